import json

import pytest
import torch

from vid2robot.policy import (
    BCZPolicy,
    TaskIdPolicy,
    Vid2RobotPolicy,
    load_policy,
    save_policy,
)


def _inputs(policy):
    robot = torch.rand(2, 3, 3, 32, 32)
    prompt = torch.tensor([0, 2]) if policy.prompt_kind == "task_index" else torch.rand(2, 4, 3, 32, 32)
    return prompt, robot


@pytest.fixture
def policies(tiny_config, tiny_bcz_config, tiny_task_config):
    return [
        Vid2RobotPolicy(tiny_config(horizon=2)),
        BCZPolicy(tiny_bcz_config()),
        TaskIdPolicy(tiny_task_config()),
    ]


def test_directory_round_trip(tmp_path, policies) -> None:
    for policy in policies:
        policy.eval()
        directory = save_policy(policy, tmp_path / type(policy).__name__)
        assert {p.name for p in directory.iterdir()} == {"model.safetensors", "config.json"}
        assert json.loads((directory / "config.json").read_text())["policy_class"] == type(policy).__name__
        loaded = type(policy).from_checkpoint(directory)
        assert type(loaded) is type(policy) and not loaded.training and loaded.config == policy.config
        prompt, robot = _inputs(policy)
        torch.testing.assert_close(loaded(prompt, robot).action_logits, policy(prompt, robot).action_logits)


def test_lightning_checkpoint(tmp_path, tiny_config) -> None:
    policy = Vid2RobotPolicy(tiny_config()).eval()
    state = {f"policy.{k}": v for k, v in policy.state_dict().items()}
    state["loss.video_video.bias"] = torch.tensor(-10.0)  # training-only parameters are ignored
    ckpt = {
        "state_dict": state,
        "hyper_parameters": {"policy_class": "Vid2RobotPolicy", "policy_config": policy.config.to_dict()},
        "epoch": 3,
    }
    torch.save(ckpt, tmp_path / "last.ckpt")
    loaded = load_policy(tmp_path / "last.ckpt")
    prompt, robot = _inputs(policy)
    torch.testing.assert_close(loaded(prompt, robot).action_logits, policy(prompt, robot).action_logits)
    with pytest.raises(ValueError, match="holds a Vid2RobotPolicy, not a BCZPolicy"):
        BCZPolicy.from_checkpoint(tmp_path / "last.ckpt")


def test_checkpoint_errors(tmp_path, tiny_config) -> None:
    policy = Vid2RobotPolicy(tiny_config())
    directory = save_policy(policy, tmp_path / "ok")
    with pytest.raises(FileNotFoundError, match="no policy checkpoint"):
        load_policy(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"has no config\.json"):
        load_policy(tmp_path / "empty")
    meta = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**meta, "policy_class": "Nope"}))
    with pytest.raises(ValueError, match="unknown policy class 'Nope'"):
        load_policy(directory)
    bigger = {**meta["policy_config"], "action_bins": 64}
    (directory / "config.json").write_text(json.dumps({**meta, "policy_config": bigger}))
    with pytest.raises(
        ValueError, match=r"action_decoder\.head\.weight: checkpoint \(32, 32\) vs model \(64, 32\)"
    ):
        load_policy(directory)
    torch.save({"state_dict": {}, "hyper_parameters": {}}, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError, match="policy_class"):
        load_policy(tmp_path / "bad.ckpt")
    hp = {"policy_class": "Vid2RobotPolicy", "policy_config": policy.config.to_dict()}
    torch.save({"state_dict": {"model.x": torch.zeros(1)}, "hyper_parameters": hp}, tmp_path / "prefix.ckpt")
    with pytest.raises(ValueError, match=r"no state_dict keys start with 'policy\.'"):
        load_policy(tmp_path / "prefix.ckpt")
    partial = {f"policy.{k}": v for k, v in list(policy.state_dict().items())[1:]}
    torch.save({"state_dict": partial, "hyper_parameters": hp}, tmp_path / "partial.ckpt")
    first_key = next(iter(policy.state_dict()))
    with pytest.raises(ValueError, match=f"missing keys \\['{first_key}'\\]"):
        load_policy(tmp_path / "partial.ckpt")


def test_a_policy_started_from_released_vit_weights_loads_without_them(tmp_path, tiny_config) -> None:
    from detection.vit import VisionTransformer

    released = tmp_path / "deit.pth"
    torch.save(
        {"model": VisionTransformer(img_size=64, embed_dim=32, depth=1, num_heads=2).state_dict()}, released
    )
    config = tiny_config(
        frame_encoder="vit",
        encoder_dim=32,
        encoder_depth=1,
        encoder_heads=2,
        encoder_checkpoint=str(released),
    )
    policy = Vid2RobotPolicy(config).eval()
    directory = save_policy(policy, tmp_path / "trained")
    released.unlink()  # not on the robot: the trained weights are what loads
    loaded = load_policy(directory)
    assert loaded.config.encoder_checkpoint is None
    prompt, robot = _inputs(policy)
    torch.testing.assert_close(loaded(prompt, robot).action_logits, policy(prompt, robot).action_logits)
