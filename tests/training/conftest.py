"""A tiny real episode dataset (H.264 mp4 + parquet) for training tests: 2 tasks x 4 episodes (2 train, 2 val) of 6 steps, 32 px."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vid2robot.data.episode_format import DatasetInfo, EpisodeWriter

IMAGE_SIZE = 32


@pytest.fixture(scope="session")
def training_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("training") / "episodes"
    info = DatasetInfo(
        fps=10,
        cameras=("robot", "demonstrator"),
        image_height=IMAGE_SIZE,
        image_width=IMAGE_SIZE,
        action_names=("dx", "dy", "dz", "grip"),
        state_names=("x", "y", "z"),
        robot="synthetic",
    )
    rng = np.random.default_rng(0)
    with EpisodeWriter(root, info) as writer:
        for task_index, task in enumerate(("reach-v3", "push-v3")):
            for episode in range(4):
                length = 6
                # each task has its own colour, so a policy can tell the tasks apart from either video
                colour = np.array([200, 40, 40]) if task_index == 0 else np.array([40, 40, 200])
                base = colour + rng.integers(-30, 30, (1, IMAGE_SIZE, IMAGE_SIZE, 3))
                ramp = np.linspace(0, 60, length)[:, None, None, None]
                robot = np.clip(base + ramp, 0, 255).astype(np.uint8)
                demo = np.clip(255 - base - ramp, 0, 255).astype(np.uint8)
                sign = 1.0 if task_index == 0 else -1.0
                actions = np.tile(np.array([0.5 * sign, -0.25 * sign, 0.1, sign], np.float32), (length, 1))
                writer.add_episode(
                    frames={"robot": robot, "demonstrator": demo},
                    actions=actions,
                    states=rng.normal(size=(length, 3)).astype(np.float32),
                    task=task,
                    task_index=task_index,
                    task_text=f"{task.removesuffix('-v3')} the object",
                    split="val" if episode >= 2 else "train",
                )
    return root
