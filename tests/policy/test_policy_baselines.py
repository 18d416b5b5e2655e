import pytest
import torch

from vid2robot.policy import BCZConfig, BCZPolicy, TaskIdPolicy, Vid2RobotLoss, state_window_indices


def test_bcz_shapes_and_paper_size(tiny_bcz_config) -> None:
    policy = BCZPolicy(tiny_bcz_config(horizon=2))
    out = policy(torch.rand(2, 4, 3, 32, 32), torch.rand(2, 3, 3, 32, 32))
    assert out.action_logits.shape == (2, 2, 4, 32)
    assert out.prompt_embedding.shape == (2, 16) and out.robot_embedding is None
    paper = BCZPolicy(BCZConfig.paper())
    encoder = sum(p.numel() for n, p in paper.prompt_encoder.named_parameters())
    assert 11.0e6 < encoder < 11.4e6  # ResNet-18 trunk without its classifier: 11.2M


def test_bcz_uses_only_the_current_frame_and_film_conditions_on_the_prompt(tiny_bcz_config) -> None:
    policy = BCZPolicy(tiny_bcz_config()).eval()
    for block in policy.state_encoder.blocks:  # FiLM starts as identity; perturb it to see conditioning
        torch.nn.init.normal_(block.film.weight, std=0.5)
    prompt, robot = torch.rand(1, 4, 3, 32, 32), torch.rand(1, 3, 3, 32, 32)
    base = policy(prompt, robot).action_logits
    changed_history = robot.clone()
    changed_history[:, :-1] = torch.rand(1, 2, 3, 32, 32)
    torch.testing.assert_close(policy(prompt, changed_history).action_logits, base)
    assert not torch.allclose(policy(torch.rand_like(prompt), robot).action_logits, base)


@pytest.mark.parametrize("kind", ["bcz", "task"])
def test_batched_matches_select_action(kind, tiny_bcz_config, tiny_task_config) -> None:
    if kind == "bcz":
        policy, prompt = BCZPolicy(tiny_bcz_config()).eval(), torch.rand(4, 3, 32, 32)
        batched_prompt = prompt.expand(5, -1, -1, -1, -1)
    else:
        policy, prompt = TaskIdPolicy(tiny_task_config()).eval(), 2
        batched_prompt = torch.full((5,), 2)
    episode = torch.rand(5, 3, 32, 32)
    windows = torch.stack([episode[state_window_indices(t, 3)] for t in range(5)])
    expected = policy.decode_actions(policy(batched_prompt, windows).action_logits)[:, 0]
    policy.set_prompt(prompt)
    torch.testing.assert_close(torch.stack([policy.select_action(f) for f in episode]), expected)


def test_task_id_policy_depends_on_the_task_and_trains(tiny_task_config) -> None:
    config = tiny_task_config()
    policy = TaskIdPolicy(config)
    assert policy.prompt_kind == "task_index"
    robot = torch.rand(3, 3, 3, 32, 32)
    out = policy(torch.tensor([0, 1, 2]), robot)
    assert out.action_logits.shape == (3, 1, 4, 32) and out.prompt_embedding is None
    a = policy(torch.tensor([0, 0, 0]), robot).action_logits
    assert not torch.allclose(a, out.action_logits)
    result = Vid2RobotLoss.from_config(config)(out, torch.zeros(3, 4))
    result["loss"].backward()
    assert policy.task_embedding.weight.grad.abs().sum() > 0
    assert not hasattr(policy, "prompt_resampler")


def test_task_id_bad_inputs(tiny_task_config) -> None:
    policy = TaskIdPolicy(tiny_task_config())
    robot = torch.rand(1, 3, 3, 32, 32)
    with pytest.raises(
        ValueError, match=r"task indices must lie in \[0, num_tasks=3\).*module.policy_config.num_tasks"
    ):
        policy(torch.tensor([3]), robot)
    with pytest.raises(ValueError, match="int64 task indices"):
        policy(torch.rand(1, 4, 3, 32, 32), robot)
    with pytest.raises(ValueError, match="one int task index"):
        policy.set_prompt(torch.rand(4, 3, 32, 32))
    with pytest.raises(ValueError, match="num_tasks"):
        tiny_task_config(num_tasks=0)
