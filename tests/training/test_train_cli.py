"""vid2robot-train end to end on a real (tiny) episode dataset: Hydra composition, a real Lightning Trainer,
checkpoints, logs, and exact resume after an interruption."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from crash_and_resume import assert_resume_is_exact
from hydra import compose, initialize_config_module
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vid2robot.cli.config_checks import check_policy_schema
from vid2robot.cli.train import register_configs, run
from vid2robot.data.augment import VideoAugmentation
from vid2robot.policy import load_policy, policy_classes

IMAGE_SIZE = 32


# Training settings every tiny policy run shares, then a small Vid2Robot and a small BC-Z on 32 px frames, so a
# training step takes milliseconds.
TINY_RUN = [
    "data.num_workers=0",
    "data.batch_size=4",
    "module.use_task_text=false",
    "module.warmup_steps=2",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.log_every_n_steps=1",
    "trainer.max_epochs=100",
    "trainer.limit_val_batches=2",
    f"module.policy_config.image_size={IMAGE_SIZE}",
    "module.policy_config.prompt_frames=4",
    "module.policy_config.state_frames=2",
    "module.policy_config.action_bins=16",
]
TINY_VID2ROBOT = [
    "module.policy_config.d_model=32",
    "module.policy_config.embed_dim=32",
    "module.policy_config.prompt_latents=4",
    "module.policy_config.state_latents=2",
    "module.policy_config.fusion_depth=1",
    "module.policy_config.decoder_depth=1",
]
TINY_BCZ = [
    "task=bcz",
    "module.policy_config.widths=[8,16]",
    "module.policy_config.blocks_per_stage=[1,1]",
    "module.policy_config.embed_dim=32",
    "module.policy_config.hidden_dim=32",
]
TINY_POLICY = [*TINY_RUN, *TINY_VID2ROBOT]


def compose_policy_config(dataset: Path, *overrides: str, policy: list[str] = TINY_VID2ROBOT) -> DictConfig:
    register_configs()
    with initialize_config_module("vid2robot.conf", version_base="1.3"):
        return compose(
            "train", overrides=[f"data.root={dataset}", *TINY_RUN, *policy, "trainer.devices=1", *overrides]
        )


def test_train_writes_checkpoint_logs_and_config_and_the_policy_loads(
    training_dataset: Path, tmp_path: Path
) -> None:
    metrics = run(
        compose_policy_config(training_dataset, "trainer.max_steps=6"), tmp_path
    )  # one epoch, then validation
    assert {"train/loss", "val/loss", "val/bin_accuracy", "val/action_mae"} <= set(metrics)
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert (tmp_path / "config.yaml").is_file()
    assert (tmp_path / "csv" / "metrics.csv").is_file()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    policy = load_policy(tmp_path / "checkpoints" / "last.ckpt")
    assert type(policy).__name__ == "Vid2RobotPolicy" and policy.config.image_size == IMAGE_SIZE


def test_alignment_losses_train_on_the_robot_episode(training_dataset: Path, tmp_path: Path) -> None:
    config = compose_policy_config(training_dataset, "trainer.max_steps=6")
    assert config.data.robot_trajectory_frames == config.module.policy_config.prompt_frames == 4
    metrics = run(config, tmp_path)
    assert {"train/tcc", "train/vvcl", "val/tcc"} <= set(metrics)
    saved = OmegaConf.load(tmp_path / "config.yaml")  # resolved: what this run used
    assert saved.data.robot_trajectory_frames == 4
    action_only = ("module.policy_config.tcc_weight=0", "module.policy_config.vvcl_weight=0")
    assert compose_policy_config(training_dataset, *action_only).data.robot_trajectory_frames == 0
    with initialize_config_module("vid2robot.conf", version_base="1.3"):
        for baseline in ("bcz", "task_oracle", "blank_prompt"):  # no alignment losses, no trajectory to load
            assert compose("train", overrides=[f"task={baseline}"]).data.robot_trajectory_frames == 0


@pytest.mark.parametrize("policy", ["vid2robot", "bcz"])
def test_resume_after_interruption_is_exact(policy: str, training_dataset: Path, tmp_path: Path) -> None:
    # 24 training items / batch 4 = 6 steps per epoch: stopping at step 3 interrupts mid-epoch, and the
    # resumed run then crosses an epoch boundary. Dropout draws from the global generator, which the
    # checkpoint carries.
    tiny = {"vid2robot": TINY_VID2ROBOT, "bcz": TINY_BCZ}[policy]

    def compose(*overrides: str) -> DictConfig:
        return compose_policy_config(
            training_dataset, "module.policy_config.dropout=0.1", *overrides, policy=tiny
        )

    assert_resume_is_exact(compose, tmp_path, max_steps=8, crash_at=3)


def test_resume_from_a_missing_checkpoint_says_where_it_looked(
    training_dataset: Path, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError, match=r"last\.ckpt"):
        run(compose_policy_config(training_dataset, "ckpt_path=last"), tmp_path)


@pytest.mark.slow
def test_console_script_help_lists_the_task_group() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vid2robot.cli.train", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "task:" in result.stdout and "policy" in result.stdout and "bcz" in result.stdout


def test_bad_config_value_fails_before_training(training_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(InstantiationException, match="d_model=32 is not divisible by num_heads=3"):
        run(compose_policy_config(training_dataset, "module.policy_config.num_heads=3"), tmp_path)


def test_augmentation_is_configured_from_the_cli(training_dataset: Path, tmp_path: Path) -> None:
    def train_augmentation(*overrides: str) -> VideoAugmentation:
        data = instantiate(compose_policy_config(training_dataset, *overrides).data, _convert_="all")
        data.setup()
        return data.train_set.augmentation

    default = train_augmentation()
    assert default == VideoAugmentation()  # the CLI default is the library default: no crop, jitter 0.2
    box = default.sample_crop(np.random.default_rng(0), IMAGE_SIZE, IMAGE_SIZE)
    assert (box.height, box.width) == (IMAGE_SIZE, IMAGE_SIZE)
    paper = (
        "data.augmentation.crop_scale=[0.8,1.0]",
        "data.augmentation.crop_ratio=[0.9,1.1111111111111112]",
    )
    assert train_augmentation(*paper) == VideoAugmentation.paper()
    with pytest.raises(InstantiationException, match=r"crop_scale must satisfy"):
        run(compose_policy_config(training_dataset, "data.augmentation.crop_scale=[0.9,0.5]"), tmp_path)
    with pytest.raises(InstantiationException, match=r"unknown data.augmentation keys \['hue'\]"):
        run(compose_policy_config(training_dataset, "+data.augmentation.hue=0.1"), tmp_path)


def test_too_long_robot_trajectory_fails_before_training(training_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data.robot_trajectory_frames=5 exceeds the 4 frames"):
        run(compose_policy_config(training_dataset, "data.robot_trajectory_frames=5"), tmp_path)
    assert not list((tmp_path / "checkpoints").glob("*.ckpt"))


def test_fsdp_with_norm_clipping_is_refused_with_the_fix(training_dataset: Path, tmp_path: Path) -> None:
    cfg = compose_policy_config(training_dataset, "trainer.strategy=fsdp")
    with pytest.raises(ValueError, match=r"trainer.gradient_clip_val=null"):
        run(cfg, tmp_path)
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_two_process_ddp_training_through_the_cli(training_dataset: Path, tmp_path: Path) -> None:
    """Lightning's DDP (gloo on CPU) launched by the CLI itself: two ranks, each on its own data shard."""
    command = [
        sys.executable,
        "-m",
        "vid2robot.cli.train",
        f"data.root={training_dataset}",
        *TINY_POLICY,
        "trainer.devices=2",
        "trainer.strategy=ddp_find_unused_parameters_true",
        "trainer.max_steps=3",
        f"hydra.run.dir={tmp_path}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "MEMBER: 2/2" in log, log[-4000:]
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert checkpoint["global_step"] == 3


def test_last_checkpoint_is_the_latest_state_even_with_a_monitor(
    training_dataset: Path, tmp_path: Path
) -> None:
    # mode=max on a falling loss: the second epoch is no new "best", yet last.ckpt must move on.
    overrides = ("trainer.max_steps=12", "checkpoint.monitor=val/loss", "checkpoint.mode=max")
    run(compose_policy_config(training_dataset, *overrides), tmp_path)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert last["global_step"] == 12


POLICY_TASKS = sorted(
    path.stem
    for path in (Path(__file__).resolve().parents[2] / "vid2robot" / "conf" / "task").glob("*.yaml")
    if "policy_class" in path.read_text() or "\n  - policy\n" in path.read_text()
)


@pytest.mark.parametrize("task", POLICY_TASKS)
def test_every_policy_task_config_pairs_its_class_with_that_class_schema(task: str, tmp_path: Path) -> None:
    config = compose_policy_config(tmp_path, f"task={task}", policy=[])
    check_policy_schema(config.module)
    expected = policy_classes()[config.module.policy_class].config_class
    assert OmegaConf.get_type(config.module.policy_config) is expected


def test_an_unknown_policy_class_is_named_with_the_key_it_came_from(tmp_path: Path) -> None:
    config = compose_policy_config(tmp_path, "task=policy", policy=[])
    config.module.policy_class = "Nope"
    with pytest.raises(
        ValueError, match=r"module\.policy_class: unknown policy class 'Nope'; expected one of"
    ):
        check_policy_schema(config.module)
