"""Helpers for a tiny real episode dataset (real H.264 mp4s) whose frames encode their index as a grey level."""

from __future__ import annotations

import numpy as np

from vid2robot.data.episode_format import DatasetInfo

LENGTHS = (12, 20, 9, 15, 10, 14)  # episodes 0-2: task "reach-v3", 3-5: "push-v3"
SPLITS = ("train", "train", "val", "train", "train", "val")


def robot_level(t: int) -> int:
    return 10 + 9 * t


def demo_level(t: int) -> int:
    return 245 - 9 * t


def flat_video(levels: list[int], size: int = 32) -> np.ndarray:
    return np.stack([np.full((size, size, 3), level, np.uint8) for level in levels])


def assert_levels(frames: np.ndarray, expected: list[int]) -> None:
    """Frames have the expected grey levels, up to codec error (far below the step of 9 between frames)."""
    levels = [float(f.mean()) * (255 if f.dtype != np.uint8 else 1) for f in frames]
    np.testing.assert_allclose(levels, expected, atol=3)


TINY_INFO = DatasetInfo(
    fps=10,
    cameras=("robot", "demonstrator"),
    image_height=32,
    image_width=32,
    action_names=("dx", "dy", "dz", "grip"),
    state_names=("x", "y", "z"),
    robot="synthetic",
)
