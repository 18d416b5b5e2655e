"""LightningDataModule over COCO-format folders; can create the project's synthetic set on first use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from detection.coco.dataset import CocoDetection, collate
from detection.coco.synthetic import generate
from detection.coco.transforms import DetrAugment, EvalResize
from detection.training.resumable_loader import ResumableDataLoader, ResumableRandomSampler


class CocoDataModule(L.LightningDataModule):
    """``train_images``/``train_ann`` and ``val_images``/``val_ann`` are what a user's COCO export has.

    ``synthetic={"root": ..., "train": N, "val": M, "seed": s, "size": px}`` (optionally ``min_side``,
    ``max_side``, ``max_objects``) writes the synthetic set there if its annotation files are missing, and points
    the four paths at it.
    """

    def __init__(
        self,
        train_images: str | None = None,
        train_ann: str | None = None,
        val_images: str | None = None,
        val_ann: str | None = None,
        image_size: int = 800,
        batch_size: int = 2,
        num_workers: int = 2,
        synthetic: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if synthetic is not None:
            root = Path(synthetic["root"])
            train_images, train_ann = str(root / "train/images"), str(root / "train/annotations.json")
            val_images, val_ann = str(root / "val/images"), str(root / "val/annotations.json")
            self.synthetic: dict[str, Any] | None = dict(synthetic)
        else:
            self.synthetic = None
        if not all((train_images, train_ann, val_images, val_ann)):
            raise ValueError(
                "give train_images, train_ann, val_images and val_ann, or synthetic={'root': ...}"
            )
        if batch_size < 1 or num_workers < 0:
            raise ValueError("batch_size must be >= 1 and num_workers >= 0")
        self.paths = {"train": (train_images, train_ann), "val": (val_images, val_ann)}
        self.image_size, self.batch_size, self.num_workers = image_size, batch_size, num_workers
        self.seed = seed
        self.train_set: CocoDetection | None = None
        self.val_set: CocoDetection | None = None

    def prepare_data(self) -> None:
        spec = self.synthetic
        if spec is not None and not all(Path(ann).is_file() for _, ann in self.paths.values()):
            size = int(spec.get("size", 160))
            shape = {k: spec[k] for k in ("min_side", "max_side", "max_objects") if k in spec}
            shape.setdefault("max_side", 0.75 * size)
            generate(
                spec["root"],
                int(spec.get("train", 400)),
                int(spec.get("val", 100)),
                int(spec.get("seed", 0)),
                size=size,
                **shape,
            )

    def setup(self, stage: str | None = None) -> None:
        if self.val_set is None:
            self.prepare_data()
            self.train_set = CocoDetection(*self.paths["train"], DetrAugment(self.image_size))
            self.val_set = CocoDetection(*self.paths["val"], EvalResize(self.image_size))
            if self.train_set.cat_ids != self.val_set.cat_ids:
                raise ValueError("train and val annotation files have different category ids")

    @property
    def num_classes(self) -> int:
        self.setup()
        return self.val_set.num_classes

    def _options(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size, "num_workers": self.num_workers, "collate_fn": collate,
            "persistent_workers": self.num_workers > 0,
        }  # fmt: skip

    def train_dataloader(self) -> ResumableDataLoader:
        """Seeded epochs and per-image augmentation draws, resumable mid-epoch (exact resume)."""
        self.setup()
        sampler = ResumableRandomSampler(len(self.train_set), seed=self.seed)
        return ResumableDataLoader(self.train_set, sampler=sampler, **self._options())

    def val_dataloader(self) -> DataLoader:
        self.setup()
        return DataLoader(self.val_set, **self._options())
