"""COCO-format detection data (an annotation json + an image folder), as DETR models consume it."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import cv2
import numpy as np
import torch
from pycocotools.coco import COCO
from torch import Tensor
from torch.utils.data import Dataset

from detection.coco.transforms import Transform


class CocoDetection(Dataset):
    """``(image [3, H, W] float in [0, 1], target)`` with ``target = {"boxes": [N, 4] cxcywh normalised to the
    transformed image, "labels": [N] contiguous 0-based, "image_id", "orig_size": (h, w)}``.

    Category ids are mapped to ``0..K-1`` in sorted id order (``cat_ids[label]`` maps back); crowd boxes and boxes
    without area are dropped, as in DETR."""

    def __init__(self, image_dir: str | Path, ann_file: str | Path, transform: Transform) -> None:
        self.image_dir, self.ann_file = Path(image_dir), Path(ann_file)
        if not self.ann_file.is_file():
            raise ValueError(f"annotation file {self.ann_file} does not exist")
        if not self.image_dir.is_dir():
            raise ValueError(f"image folder {self.image_dir} does not exist")
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco = COCO(str(self.ann_file))
        self.ids = sorted(self.coco.imgs)
        self.cat_ids = sorted(self.coco.cats)
        self.cat_to_label = {c: i for i, c in enumerate(self.cat_ids)}
        self.transform = transform

    @property
    def num_classes(self) -> int:
        return len(self.cat_ids)

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Raw RGB image, ``xyxy`` pixel boxes, labels and the image id (no transform)."""
        image_id = self.ids[index]
        info = self.coco.imgs[image_id]
        path = self.image_dir / info["file_name"]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read image {path}")
        img = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        anns = [a for a in self.coco.imgToAnns[image_id] if not a.get("iscrowd", 0)]
        boxes = np.array([a["bbox"] for a in anns], dtype=np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        h, w = img.shape[:2]
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        labels = np.array([self.cat_to_label[a["category_id"]] for a in anns], dtype=np.int64)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return img, boxes[keep], labels[keep], image_id

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        img, boxes, labels, image_id = self.load(index)
        orig = img.shape[:2]
        img, boxes, labels = self.transform((img, boxes, labels))
        h, w = img.shape[:2]
        cxcywh = np.stack(
            (
                (boxes[:, 0] + boxes[:, 2]) / 2 / w,
                (boxes[:, 1] + boxes[:, 3]) / 2 / h,
                (boxes[:, 2] - boxes[:, 0]) / w,
                (boxes[:, 3] - boxes[:, 1]) / h,
            ),
            axis=1,
        ).reshape(-1, 4)
        target = {
            "boxes": torch.from_numpy(cxcywh.astype(np.float32)),
            "labels": torch.from_numpy(labels),
            "image_id": torch.tensor(image_id),
            "orig_size": torch.tensor(orig),
        }
        return torch.from_numpy(img).permute(2, 0, 1).float().div(255.0), target


def collate(batch: list[tuple[Tensor, dict[str, Tensor]]]) -> tuple[Tensor, Tensor, list[dict[str, Tensor]]]:
    """Pad images bottom/right to the batch maximum -> ``images [B, 3, H, W]``, ``pad_mask [B, H, W]`` (True=pad)."""
    h = max(img.shape[1] for img, _ in batch)
    w = max(img.shape[2] for img, _ in batch)
    images = torch.zeros(len(batch), 3, h, w)
    mask = torch.ones(len(batch), h, w, dtype=torch.bool)
    for i, (img, _) in enumerate(batch):
        images[i, :, : img.shape[1], : img.shape[2]] = img
        mask[i, : img.shape[1], : img.shape[2]] = False
    return images, mask, [t for _, t in batch]
