"""Video augmentations of Vid2Robot training: one colour jitter and, optionally, one random crop per video.

Every frame of a video gets the same crop box and the same colour factors, so augmentation never
invents motion between frames; the prompt and robot videos are augmented independently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from detection.plain_config import PlainConfig


@dataclass(frozen=True)
class CropBox:
    top: int
    left: int
    height: int
    width: int


@dataclass(frozen=True)
class ColorFactors:
    brightness: float
    contrast: float
    saturation: float


@dataclass(frozen=True)
class VideoAugmentation(PlainConfig):
    """Random resized crop (area fraction ``crop_scale``, aspect ``crop_ratio``) and colour jitter.

    A jitter of ``0.2`` draws a factor in ``[0.8, 1.2]`` (torchvision's ColorJitter convention). The default
    does not crop: with a fixed camera, cropping and resizing back changes the scale and position the policy
    sees, which cost 13 points of closed-loop success for Vid2Robot and BC-Z alike on the Meta-World pairs
    benchmark (README); ``paper()`` adds the paper's random resized crop.
    """

    config_name: ClassVar[str] = "data.augmentation"

    crop_scale: tuple[float, float] = (1.0, 1.0)
    crop_ratio: tuple[float, float] = (1.0, 1.0)
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    @classmethod
    def paper(cls) -> VideoAugmentation:
        """Crop 80-100% of the area at aspect 0.9-1/0.9, then the same colour jitter."""
        return cls(crop_scale=(0.8, 1.0), crop_ratio=(0.9, 1.0 / 0.9))

    def __post_init__(self) -> None:
        low, high = self.crop_scale
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {self.crop_scale}")
        if not 0.0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ValueError(f"crop_ratio must satisfy 0 < low <= high, got {self.crop_ratio}")
        for name in ("brightness", "contrast", "saturation"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} jitter must be in [0, 1), got {getattr(self, name)}")

    def sample_crop(self, rng: np.random.Generator, height: int, width: int) -> CropBox:
        area = rng.uniform(*self.crop_scale) * height * width
        ratio = math.exp(rng.uniform(math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1])))
        crop_h = min(height, max(1, round(math.sqrt(area / ratio))))
        crop_w = min(width, max(1, round(math.sqrt(area * ratio))))
        top = int(rng.integers(0, height - crop_h + 1))
        left = int(rng.integers(0, width - crop_w + 1))
        return CropBox(top, left, crop_h, crop_w)

    def sample_color(self, rng: np.random.Generator) -> ColorFactors:
        def factor(amount: float) -> float:
            return float(rng.uniform(1.0 - amount, 1.0 + amount))

        return ColorFactors(factor(self.brightness), factor(self.contrast), factor(self.saturation))


def crop_frames(frames: np.ndarray, box: CropBox) -> np.ndarray:
    """Crop ``uint8 [T, H, W, 3]`` frames with one box (resize happens afterwards in frames_to_tensor)."""
    return frames[:, box.top : box.top + box.height, box.left : box.left + box.width]


def jitter_video(video: torch.Tensor, factors: ColorFactors) -> torch.Tensor:
    """Brightness, contrast and saturation of a ``float [T, 3, S, S]`` video in ``[0, 1]``, one factor each."""
    gray_weights = video.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    out = video * factors.brightness
    gray = (out * gray_weights).sum(dim=1, keepdim=True)
    out = (out - gray.mean(dim=(1, 2, 3), keepdim=True)) * factors.contrast + gray.mean(
        dim=(1, 2, 3), keepdim=True
    )
    gray = (out * gray_weights).sum(dim=1, keepdim=True)
    out = (out - gray) * factors.saturation + gray
    return out.clamp_(0.0, 1.0)
