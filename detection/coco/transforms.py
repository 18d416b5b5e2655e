"""DETR-style augmentation (DETR ``make_coco_transforms``, kept by Plain-DETR): horizontal flip, then either a
multi-scale resize or resize -> random crop -> multi-scale resize. Sizes scale with ``image_size`` (the short side
at evaluation; DETR's 800 gives its 480-800 scales, 1333 max, 384-600 crops)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

Sample = tuple[
    np.ndarray, np.ndarray, np.ndarray
]  # image uint8 [H, W, 3] RGB, boxes xyxy px [N, 4], labels [N]
Transform = Callable[[Sample], Sample]


def resize(sample: Sample, short: int, max_size: int | None) -> Sample:
    """Shorter side to ``short``, longer side at most ``max_size`` (aspect kept)."""
    img, boxes, labels = sample
    h, w = img.shape[:2]
    scale = short / min(h, w)
    if max_size is not None and max(h, w) * scale > max_size:
        scale = max_size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    boxes = boxes * np.array([nw / w, nh / h, nw / w, nh / h], dtype=np.float32)
    return img, boxes, labels


def crop(sample: Sample, top: int, left: int, height: int, width: int) -> Sample:
    """Crop, clip boxes, drop those left with no area."""
    img, boxes, labels = sample
    img = img[top : top + height, left : left + width]
    boxes = boxes - np.array([left, top, left, top], dtype=np.float32)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return np.ascontiguousarray(img), boxes[keep], labels[keep]


def hflip(sample: Sample) -> Sample:
    img, boxes, labels = sample
    w = img.shape[1]
    boxes = boxes[:, [2, 1, 0, 3]] * np.array([-1, 1, -1, 1], dtype=np.float32) + np.array(
        [w, 0, w, 0], np.float32
    )
    return np.ascontiguousarray(img[:, ::-1]), boxes, labels


@dataclass
class DetrAugment:
    """Training augmentation for short side ``image_size`` (random, uses Python's ``random``: seed it)."""

    image_size: int
    flip_prob: float = 0.5

    def __post_init__(self) -> None:
        if self.image_size < 32:
            raise ValueError(f"image_size must be >= 32, got {self.image_size}")
        s = self.image_size
        step = max(1, s // 25)  # DETR: 32 px steps at 800
        self.scales: Sequence[int] = list(range(int(0.6 * s), s + 1, step))
        self.max_size = round(s * 1333 / 800)
        self.pre_crop = [s // 2, s * 5 // 8, s * 3 // 4]
        self.crop_range = (int(0.48 * s), int(0.75 * s))

    def __call__(self, sample: Sample) -> Sample:
        if random.random() < self.flip_prob:
            sample = hflip(sample)
        if random.random() < 0.5:
            return resize(sample, random.choice(self.scales), self.max_size)
        sample = resize(sample, random.choice(self.pre_crop), None)
        h, w = sample[0].shape[:2]
        ch = random.randint(min(self.crop_range[0], h), min(self.crop_range[1], h))
        cw = random.randint(min(self.crop_range[0], w), min(self.crop_range[1], w))
        sample = crop(sample, random.randint(0, h - ch), random.randint(0, w - cw), ch, cw)
        return resize(sample, random.choice(self.scales), self.max_size)


@dataclass
class EvalResize:
    """Evaluation: shorter side ``image_size``, longer at most ``image_size * 1333 / 800``."""

    image_size: int

    def __call__(self, sample: Sample) -> Sample:
        return resize(sample, self.image_size, round(self.image_size * 1333 / 800))
