"""OpenCV frame source for the camera node (no ROS): a device index, a video file or a stream URL."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class FrameSource:
    """``read()`` gives the next frame as ``uint8 [H, W, 3]`` RGB, or None when none is available.

    ``source`` is a device index (``"0"``), a video file path or a URL that OpenCV opens. With ``loop``, a
    file restarts at its end; devices and streams return None on a failed read and are read again later.
    """

    def __init__(self, source: str, loop: bool = False) -> None:
        self.source = source
        self.is_file = Path(source).is_file()
        self.loop = loop and self.is_file
        target: int | str = int(source) if source.isdigit() else source
        self._capture = cv2.VideoCapture(target)
        if not self._capture.isOpened():
            kind = "video file" if self.is_file else "device or stream"
            raise ValueError(f"OpenCV cannot open the {kind} {source!r}")

    def read(self) -> np.ndarray | None:
        ok, bgr = self._capture.read()
        if not ok and self.loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._capture.read()
        if not ok or bgr is None:
            return None
        if bgr.ndim == 2:
            return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB if bgr.shape[2] == 4 else cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self._capture.release()
