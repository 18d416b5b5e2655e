"""The session-wide tiny episode dataset of tests/data (see episode_fixtures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from episode_fixtures import LENGTHS, SPLITS, TINY_INFO, demo_level, flat_video, robot_level

from vid2robot.data.episode_format import EpisodeWriter


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny") / "ds"
    with EpisodeWriter(root, TINY_INFO) as writer:
        for index, (length, split) in enumerate(zip(LENGTHS, SPLITS, strict=True)):
            steps = np.arange(length, dtype=np.float32)
            actions = np.stack([steps / 100, -steps / 100, np.full(length, index / 10), np.ones(length)], 1)
            task, task_index = ("reach-v3", 0) if index < 3 else ("push-v3", 1)
            writer.add_episode(
                frames={
                    "robot": flat_video([robot_level(t) for t in range(length)]),
                    "demonstrator": flat_video([demo_level(t) for t in range(length)]),
                },
                actions=actions,
                states=np.stack([steps, steps * 2, steps * 3], 1),
                task=task,
                task_index=task_index,
                task_text=f"{task.removesuffix('-v3')} the object",
                success=True,
                seed=100 + index,
                split=split,
            )
    return root
