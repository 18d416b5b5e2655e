"""Recorded frames at one size per dataset (the episode format stores every camera at one frame size)."""

from __future__ import annotations

import cv2
import numpy as np


class FrameSizer:
    """Resizes frames to ``size`` (height, width); without one, the first frame's size, rounded down to even
    (H.264 yuv420p needs even sides), fixes it."""

    def __init__(self, size: tuple[int, int] | None = None) -> None:
        if size is not None and (size[0] <= 0 or size[1] <= 0 or size[0] % 2 or size[1] % 2):
            raise ValueError(f"frame size must be positive and even (H.264 yuv420p), got {size[1]}x{size[0]}")
        self.size = size

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.size is None:
            height, width = frame.shape[:2]
            self.size = (height - height % 2, width - width % 2)
        if frame.shape[:2] == self.size:
            return frame
        return cv2.resize(frame, self.size[::-1], interpolation=cv2.INTER_AREA)
