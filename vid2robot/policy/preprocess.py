"""The one conversion from raw RGB uint8 frames to model input (used by training, evaluator and ROS node),
and the standardisation every image backbone applies first."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

# ImageNet statistics: inputs arrive in [0, 1] and every image backbone here expects standardised pixels.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def frames_to_tensor(frames: np.ndarray, image_size: int) -> torch.Tensor:
    """``uint8 [..., H, W, 3]`` RGB -> ``float32 [..., 3, S, S]`` in ``[0, 1]``.

    Frames are resized to ``S x S`` with ``cv2.INTER_AREA`` (the right filter for down-scaling); a
    non-square frame is stretched, so crop beforehand if the aspect ratio matters.
    """
    if not isinstance(frames, np.ndarray):
        raise ValueError(f"frames must be a numpy array, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB, got dtype {frames.dtype}")
    if frames.ndim < 3 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape [..., H, W, 3] (RGB), got {tuple(frames.shape)}")
    if image_size <= 0:
        raise ValueError(f"image_size must be > 0, got {image_size}")
    lead, (height, width) = frames.shape[:-3], frames.shape[-3:-1]
    if height == 0 or width == 0:
        raise ValueError(f"frames have an empty spatial size {height}x{width}")
    flat = frames.reshape(-1, height, width, 3)
    if (height, width) != (image_size, image_size):
        resized = np.empty((len(flat), image_size, image_size, 3), np.uint8)
        for i, frame in enumerate(flat):
            resized[i] = cv2.resize(frame, (image_size, image_size), interpolation=cv2.INTER_AREA)
        flat = resized
    tensor = torch.from_numpy(np.ascontiguousarray(flat)).permute(0, 3, 1, 2).float().div_(255.0)
    return tensor.reshape(*lead, 3, image_size, image_size)


class ImageNetNormalize(nn.Module):
    """``[B, 3, S, S]`` in ``[0, 1]`` -> standardised with ImageNet mean and std (no state-dict entries)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
