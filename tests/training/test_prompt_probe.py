"""The prompt probe: encodings of real episode videos, the two accuracies, and the CLI on a saved policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vid2robot.data.episode_dataset import EpisodeDataset
from vid2robot.evaluation.prompt_probe import (
    PromptEncodings,
    encode_prompts,
    main,
    opposite_accuracy,
    task_accuracy,
)
from vid2robot.policy import TaskIdConfig, TaskIdPolicy, Vid2RobotConfig, Vid2RobotPolicy, save_policy

TINY = dict(image_size=32, prompt_frames=4, state_frames=3, d_model=32, num_heads=2, prompt_latents=4,
            state_latents=2, embed_dim=16, action_bins=32)  # fmt: skip


def _encodings(rows: list[list[float]], tasks: list[str]) -> PromptEncodings:
    vectors = np.array(rows, dtype=np.float64)
    return PromptEncodings(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), np.array(tasks))


def test_accuracies_count_the_own_task_strictly_nearest() -> None:
    tasks = ["drawer-open-v3", "drawer-close-v3", "reach-v3"]
    reference = _encodings([[1, 0, 0], [0, 1, 0], [0, 0, 1]], tasks)
    probe = _encodings(
        [[0.9, 0.1, 0.0], [0.8, 0.2, 0.5], [1, 1, 0], [0, 0.2, 1]],  # right, wrong, a tie, right
        ["drawer-open-v3", "drawer-close-v3", "drawer-open-v3", "reach-v3"],
    )
    assert task_accuracy(reference, probe) == pytest.approx(2 / 4)
    assert opposite_accuracy(reference, probe) == pytest.approx(
        1 / 3
    )  # reach has no opposite; a tie is no win
    assert opposite_accuracy(reference, _encodings([[0, 0, 1]], ["reach-v3"])) is None
    with pytest.raises(ValueError, match="have no reference prompts"):
        task_accuracy(reference, _encodings([[1, 0, 0]], ["door-lock-v3"]))


def test_encodings_of_real_videos_and_a_blank_prompt_is_never_credited(training_dataset: Path) -> None:
    dataset = EpisodeDataset(training_dataset)
    policy = Vid2RobotPolicy(Vid2RobotConfig(**TINY)).eval()
    robot = encode_prompts(policy, dataset, "robot")
    assert sorted(robot.tasks) == ["push-v3"] * 2 + ["reach-v3"] * 2  # the train split's successful episodes
    np.testing.assert_allclose(np.linalg.norm(robot.vectors, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(robot.vectors[0], robot.vectors[-1])
    blank = Vid2RobotPolicy(Vid2RobotConfig(**TINY, blank_prompt=True)).eval()
    same = encode_prompts(blank, dataset, "demonstrator")
    assert task_accuracy(encode_prompts(blank, dataset, "robot"), same) == 0.0  # all ties


def test_refuses_what_it_cannot_probe(training_dataset: Path) -> None:
    dataset = EpisodeDataset(training_dataset)
    with pytest.raises(ValueError, match="camera 'hand' is not in"):
        encode_prompts(Vid2RobotPolicy(Vid2RobotConfig(**TINY)), dataset, "hand")
    oracle = TaskIdPolicy(TaskIdConfig(**TINY, num_tasks=2))
    with pytest.raises(ValueError, match="not prompted by video"):
        encode_prompts(oracle, dataset, "robot")


def test_cli_prints_both_accuracies(training_dataset: Path, tmp_path: Path, capsys) -> None:
    save_policy(Vid2RobotPolicy(Vid2RobotConfig(**TINY)), tmp_path / "policy")
    main([str(tmp_path / "policy"), "--probe", f"{training_dataset}:demonstrator", "--reference",
          f"{training_dataset}:robot"])  # fmt: skip
    out = capsys.readouterr().out
    assert "4 probe prompts; task accuracy" in out and "(chance 0.500)" in out
    assert "opposite-task accuracy n/a" in out  # reach and push are no opposite pair
    with pytest.raises(SystemExit):
        main([str(tmp_path / "policy"), "--probe", str(training_dataset), "--reference", "x:robot"])
    assert "expected DATA:CAMERA" in capsys.readouterr().err
