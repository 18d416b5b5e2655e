"""``sensor_msgs/Image`` <-> numpy without cv_bridge.

In memory, frames are ``uint8 [H, W, 3]`` RGB (docs/architecture.md). Incoming images in rgb8, bgr8, rgba8,
bgra8 or mono8 are converted to that; anything else raises ``ImageConversionError`` with the reason.
"""

from __future__ import annotations

import array

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image

# encoding -> (channels, index order that turns the channels into RGB; None for mono)
_ENCODINGS: dict[str, tuple[int, tuple[int, int, int] | None]] = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, None),
}
SUPPORTED_ENCODINGS = tuple(_ENCODINGS)


class ImageConversionError(ValueError):
    """An image message that cannot be turned into an RGB frame (the message says why)."""


def image_to_rgb(msg: Image) -> np.ndarray:
    """Decode an Image message into a new contiguous ``uint8 [H, W, 3]`` RGB array (row padding dropped)."""
    if msg.encoding not in _ENCODINGS:
        raise ImageConversionError(
            f"unsupported image encoding {msg.encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    channels, order = _ENCODINGS[msg.encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"image has an empty size {width}x{height}")
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is smaller than width*channels = {row_bytes} ({msg.encoding})"
        )
    if len(msg.data) != step * height:
        raise ImageConversionError(
            f"data has {len(msg.data)} bytes, expected step*height = {step}*{height} = {step * height}"
        )
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(height, step)
    pixels = rows[:, :row_bytes].reshape(height, width, channels)
    if order is None:
        return np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, list(order)])


def check_rgb_frame(frame: np.ndarray) -> None:
    """Raise ``ImageConversionError`` unless ``frame`` is a ``uint8 [H, W, 3]`` array."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ImageConversionError(f"frame must be uint8 [H, W, 3] RGB, got {got}")


def rgb_to_image(frame: np.ndarray, stamp: Time, frame_id: str) -> Image:
    """Encode a ``uint8 [H, W, 3]`` RGB frame as an rgb8 Image (tightly packed rows)."""
    check_rgb_frame(frame)
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(frame.shape[0]), int(frame.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = array.array("B", np.ascontiguousarray(frame).tobytes())
    return msg
