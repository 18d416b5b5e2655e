"""Actions in a robot's own units: statistics written with the data, trained in [-1, 1], decoded back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_cli import compose_policy_config

from vid2robot.cli.train import run
from vid2robot.data.episode_format import DatasetInfo, EpisodeWriter
from vid2robot.data.stats import STATS_FILE
from vid2robot.policy import load_policy
from vid2robot.policy.action_normalization import ActionNormalizer, action_range
from vid2robot.policy.preprocess import frames_to_tensor

SIZE = 32
# Per task a constant action in robot units, far outside [-1, 1] (e.g. joint targets, gripper width in mm).
TASK_ACTIONS = {"reach-v3": [9.0, 4.5, 6.6, 12.0], "push-v3": [3.0, 7.5, 6.0, 0.0]}


def _units_dataset(root: Path) -> Path:
    info = DatasetInfo(
        fps=10, cameras=("robot", "demonstrator"), image_height=SIZE, image_width=SIZE,
        action_names=("j0", "j1", "j2", "grip_mm"), state_names=("x",),
    )  # fmt: skip
    rng = np.random.default_rng(0)
    with EpisodeWriter(root, info) as writer:
        for task_index, (task, action) in enumerate(TASK_ACTIONS.items()):
            colour = np.array([200, 40, 40]) if task_index == 0 else np.array([40, 40, 200])
            for episode in range(4):
                noise = colour + rng.integers(-30, 30, (1, SIZE, SIZE, 3))
                base = np.clip(noise + np.linspace(0, 60, 6)[:, None, None, None], 0, 255).astype(np.uint8)
                writer.add_episode(
                    {"robot": base, "demonstrator": 255 - base},
                    np.tile(np.array(action, np.float32), (6, 1)),
                    np.zeros((6, 1), np.float32),
                    task,
                    task_index,
                    split="val" if episode >= 2 else "train",
                )
    return root


def test_writer_records_statistics_in_lerobot_names(tmp_path: Path) -> None:
    root = _units_dataset(tmp_path / "units")
    stats = json.loads((root / "meta" / STATS_FILE).read_text())
    assert set(stats) == {"action", "observation.state"}
    action = stats["action"]
    assert action["min"] == pytest.approx([3.0, 4.5, 6.0, 0.0]) and action["max"] == pytest.approx(
        [9.0, 7.5, 6.6, 12.0]
    )
    assert action["count"] == 2 * 4 * 6 and set(action) == {
        "min",
        "max",
        "mean",
        "std",
        "q01",
        "q99",
        "count",
    }
    assert action_range(action, "auto") == (action["min"], action["max"])
    assert action_range({"min": [-1.0], "max": [0.5], "q01": [-1], "q99": [0.5]}, "auto") is None
    normalizer = ActionNormalizer(*action_range(action, "min_max"))
    actions = torch.tensor([[6.0, 4.5, 6.6, 3.0]])
    torch.testing.assert_close(normalizer.normalize(actions), torch.tensor([[0.0, -1.0, 1.0, -0.5]]))
    torch.testing.assert_close(normalizer.unnormalize(normalizer.normalize(actions)), actions)


@pytest.mark.slow
def test_a_policy_trains_and_acts_in_the_robots_units(tmp_path: Path) -> None:
    """Before: actions 5, 8 and 12 all decoded to 0.996 (the tokenizer clamped them to [-1, 1])."""
    root = _units_dataset(tmp_path / "units")
    config = compose_policy_config(
        root,
        "trainer.max_steps=90",
        "trainer.limit_val_batches=0",
        "module.learning_rate=3e-3",
        "module.policy_config.tcc_weight=0",
        "module.policy_config.vvcl_weight=0",
    )
    run(config, tmp_path / "run")
    policy = load_policy(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert policy.config.action_low == pytest.approx((3.0, 4.5, 6.0, 0.0))
    assert policy.config.action_high == pytest.approx((9.0, 7.5, 6.6, 12.0))
    width = 12.0 / policy.config.action_bins  # one bin in robot units
    from vid2robot.data.episode_dataset import EpisodeDataset

    dataset = EpisodeDataset(root)
    for task, expected in TASK_ACTIONS.items():
        episode = dataset.episode(dataset.select(task=task, split="val")[0])
        policy.set_prompt(frames_to_tensor(episode.frames("demonstrator", [0, 2, 3, 5]), SIZE))
        policy.reset()
        action = policy.select_action(frames_to_tensor(episode.frames("robot", [0]), SIZE)[0])
        np.testing.assert_allclose(action.numpy(), expected, atol=2 * width + 1e-4)


def test_unmapped_actions_and_disagreeing_statistics_are_refused(tmp_path: Path) -> None:
    root = _units_dataset(tmp_path / "units")
    run(compose_policy_config(root, "trainer.max_steps=2"), tmp_path / "run")
    (root / "meta" / STATS_FILE).unlink()
    with pytest.raises(
        ValueError,
        match=r"actions lie in \[0, 12\] but the dataset has no meta/stats.json .* vid2robot\.data\.stats",
    ):
        run(compose_policy_config(root, "trainer.max_steps=2"), tmp_path / "fresh")
    from vid2robot.data.stats import main as write_stats

    write_stats([str(root)])
    stats = json.loads((root / "meta" / STATS_FILE).read_text())
    stats["action"]["max"][0] = 20.0  # as if another robot's data
    (root / "meta" / STATS_FILE).write_text(json.dumps(stats))
    with pytest.raises(ValueError, match=r"action_high=.* differs from this dataset's"):
        run(compose_policy_config(root, "trainer.max_steps=4", "ckpt_path=last"), tmp_path / "run")
