"""Side-by-side review videos: the prompt video next to the robot's rollout, each with a text label."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vid2robot.data.video_io import write_video

LABEL_HEIGHT = 18


def _panel(frame: np.ndarray, size: int, label: str) -> np.ndarray:
    """Resize an RGB frame to ``size x size`` and put a black label bar with white text above it."""
    image = cv2.resize(frame, (size, size), interpolation=cv2.INTER_NEAREST)
    bar = np.zeros((LABEL_HEIGHT, size, 3), np.uint8)
    cv2.putText(
        bar, label, (3, LABEL_HEIGHT - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA
    )
    return np.concatenate([bar, image], axis=0)


def side_by_side(
    prompt: np.ndarray, rollout: np.ndarray, prompt_label: str, rollout_labels: list[str], size: int = 192
) -> np.ndarray:
    """``uint8 [T, LABEL_HEIGHT + size, 2 * size, 3]``: prompt (left) and rollout (right), frame by frame.

    The shorter video holds its last frame; ``rollout_labels`` has one label per rollout frame.
    """
    if len(rollout_labels) != len(rollout):
        raise ValueError(
            f"need one label per rollout frame: {len(rollout_labels)} labels, {len(rollout)} frames"
        )
    length = max(len(prompt), len(rollout))
    frames = []
    for t in range(length):
        left = _panel(prompt[min(t, len(prompt) - 1)], size, prompt_label)
        right = _panel(rollout[min(t, len(rollout) - 1)], size, rollout_labels[min(t, len(rollout) - 1)])
        frames.append(np.concatenate([left, right], axis=1))
    return np.stack(frames)


def write_side_by_side(path: str | Path, video: np.ndarray, fps: int = 20) -> None:
    """Write a review video (even-sized H.264 mp4); 20 fps plays Meta-World's 80 Hz steps at 1/4 speed."""
    height, width = video.shape[1:3]
    padded = np.pad(video, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)))
    write_video(path, padded, fps=fps, crf=23)
