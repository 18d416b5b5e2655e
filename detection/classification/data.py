"""Image-folder data for fine-grained classification and re-ID (Lightning data modules, P x K sampler).

* Classification: ``root/train/<class>/*`` and ``root/val/<class>/*`` (torchvision ImageFolder layout; classes
  sorted by name). An optional ``root/test`` is used by ``trainer.test``.
* Re-ID: ``root/train/<pid>/*``, ``root/query/<pid>/*``, ``root/gallery/<pid>/*``; the camera of an image is
  read from ``_c<digits>`` in its file name (Market-1501 style). Without one, queries count as camera 0 and
  gallery images as camera 1, so no gallery image is excluded by the same-camera rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from detection.training.resumable_loader import (
    ResumableBatchSampler,
    ResumableDataLoader,
    ResumableRandomSampler,
)

__all__ = ["ImageFolderDataModule", "PKBatchSampler", "ReIDDataModule", "list_image_folder"]

_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # ImageNet statistics (the released weights use them)
_STD = np.array([0.229, 0.224, 0.225], np.float32)
_CAMERA = re.compile(r"_c(\d+)")


def list_image_folder(folder: Path) -> list[tuple[Path, str]]:
    """``(image path, class-folder name)`` for every image under ``folder/<name>/``, sorted."""
    if not folder.is_dir():
        raise ValueError(f"image folder {folder} does not exist")
    items = [
        (path, cls.name)
        for cls in sorted(p for p in folder.iterdir() if p.is_dir())
        for path in sorted(cls.iterdir())
        if path.suffix.lower() in _EXTENSIONS
    ]
    if not items:
        raise ValueError(f"no images ({sorted(_EXTENSIONS)}) in class sub-folders of {folder}")
    return items


def _size(image_size: int | list[int] | tuple[int, int]) -> tuple[int, int]:
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if h < 8 or w < 8:
        raise ValueError(f"image_size must be >= 8 pixels, got {image_size}")
    return int(h), int(w)


class ImageDataset(Dataset):
    """Reads RGB images, resizes to ``size`` (h, w), normalises; training adds a flip and a padded crop."""

    def __init__(self, paths: list[Path], labels: list[int], size: tuple[int, int], train: bool) -> None:
        self.paths, self.labels, self.size, self.train = paths, labels, size, train

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> Tensor:
        bgr = cv2.imread(str(self.paths[index]), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"could not read image {self.paths[index]}")
        h, w = self.size
        img = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (w, h), interpolation=cv2.INTER_AREA)
        img = img.astype(np.float32) / 255.0
        if self.train:
            if np.random.random() < 0.5:
                img = img[:, ::-1]
            pad = max(1, h // 16)
            img = cv2.copyMakeBorder(np.ascontiguousarray(img), pad, pad, pad, pad, cv2.BORDER_REFLECT)
            y, x = np.random.randint(0, 2 * pad + 1, 2)
            img = img[y : y + h, x : x + w]
        return torch.from_numpy(np.ascontiguousarray((img - _MEAN) / _STD)).permute(2, 0, 1)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.load(index), self.labels[index]


class ImageFolderDataModule(L.LightningDataModule):
    """Classification data from ``root/{train,val[,test]}/<class>/*``; checks the class count."""

    def __init__(
        self,
        root: str,
        num_classes: int,
        image_size: int | list[int] = 224,
        batch_size: int = 32,
        num_workers: int = 4,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.root, self.num_classes, self.size = Path(root), num_classes, _size(image_size)
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.classes: list[str] = []

    def _dataset(self, split: str, train: bool) -> ImageDataset:
        items = list_image_folder(self.root / split)
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted({c for _, c in items} - set(index))
        if unknown:
            raise ValueError(f"{self.root / split} has classes {unknown[:5]} that train/ lacks")
        return ImageDataset([p for p, _ in items], [index[c] for _, c in items], self.size, train)

    def setup(self, stage: str | None = None) -> None:
        self.classes = sorted({c for _, c in list_image_folder(self.root / "train")})
        if len(self.classes) != self.num_classes:
            raise ValueError(
                f"{self.root / 'train'} has {len(self.classes)} classes but num_classes={self.num_classes}"
            )
        self.train_set = self._dataset("train", train=True)
        self.val_set = self._dataset("val", train=False)
        self.test_set = self._dataset("test", train=False) if (self.root / "test").is_dir() else self.val_set

    def _workers(self) -> dict[str, int | bool]:
        return {"num_workers": self.num_workers, "persistent_workers": self.num_workers > 0}

    def train_dataloader(self) -> ResumableDataLoader:
        """Seeded epochs and per-image augmentation draws, resumable mid-epoch (exact resume)."""
        sampler = ResumableRandomSampler(len(self.train_set), seed=self.seed)
        return ResumableDataLoader(
            self.train_set, sampler=sampler, batch_size=self.batch_size, drop_last=True, **self._workers()
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size, **self._workers())

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=self.batch_size, **self._workers())


class PKBatchSampler(ResumableBatchSampler):
    """Batches of ``p`` identities x ``k`` images each (Hermans et al. 2017), for batch-hard triplet losses.

        Identities with fewer than ``k`` images are sampled with replacement. One epoch covers about
        ``len(labels) / (p * k)`` batches; each epoch draws a new order from ``seed`` and the epoch (which the
    Trainer sets), and an interrupted epoch resumes at its next batch.
    """

    def __init__(self, labels: list[int], p: int, k: int, seed: int = 0) -> None:
        self.by_label: dict[int, list[int]] = {}
        for i, label in enumerate(labels):
            self.by_label.setdefault(label, []).append(i)
        if p < 2 or k < 2:
            raise ValueError(f"P x K sampling needs p >= 2 and k >= 2, got p={p}, k={k}")
        if len(self.by_label) < p:
            raise ValueError(f"p={p} identities per batch but the data has only {len(self.by_label)}")
        super().__init__(num_batches=max(1, len(labels) // (p * k)), seed=seed)
        self.p, self.k = p, k

    def batches(self, rng: np.random.Generator) -> Iterator[list[int]]:
        ids = list(self.by_label)
        for _ in range(self.num_batches):
            batch: list[int] = []
            for label in rng.choice(ids, self.p, replace=False):
                pool = self.by_label[int(label)]
                batch += rng.choice(pool, self.k, replace=len(pool) < self.k).tolist()
            yield batch


class ReIDDataset(ImageDataset):
    """Items ``(image, pid, camera, is_query)`` over query + gallery images, for evaluation."""

    def __init__(
        self, paths: list[Path], pids: list[int], cams: list[int], is_query: list[bool], size: tuple[int, int]
    ) -> None:
        super().__init__(paths, pids, size, train=False)
        self.cams, self.is_query = cams, is_query

    def __getitem__(self, index: int) -> tuple[Tensor, int, int, bool]:  # type: ignore[override]
        return self.load(index), self.labels[index], self.cams[index], self.is_query[index]


class ReIDDataModule(L.LightningDataModule):
    """Re-ID data: P x K training batches over ``root/train``; ``query`` + ``gallery`` for evaluation."""

    def __init__(
        self,
        root: str,
        num_ids: int,
        image_size: int | list[int] = (256, 128),
        p: int = 16,
        k: int = 4,
        batch_size: int = 64,
        num_workers: int = 4,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.root, self.num_ids, self.size = Path(root), num_ids, _size(image_size)
        self.p, self.k, self.batch_size, self.num_workers, self.seed = p, k, batch_size, num_workers, seed

    def _eval_set(self) -> ReIDDataset:
        splits = {split: list_image_folder(self.root / split) for split in ("query", "gallery")}
        pid = {name: i for i, name in enumerate(sorted({n for items in splits.values() for _, n in items}))}
        paths, pids, cams, is_query = [], [], [], []
        for split, default_cam in (("query", 0), ("gallery", 1)):
            for path, name in splits[split]:
                match = _CAMERA.search(path.stem)
                paths.append(path)
                pids.append(pid[name])
                cams.append(int(match.group(1)) if match else default_cam)
                is_query.append(split == "query")
        return ReIDDataset(paths, pids, cams, is_query, self.size)

    def setup(self, stage: str | None = None) -> None:
        items = list_image_folder(self.root / "train")
        ids = sorted({name for _, name in items})
        if len(ids) != self.num_ids:
            raise ValueError(f"{self.root / 'train'} has {len(ids)} identities but num_ids={self.num_ids}")
        index = {name: i for i, name in enumerate(ids)}
        self.train_set = ImageDataset(
            [p for p, _ in items], [index[n] for _, n in items], self.size, train=True
        )
        self.eval_set = self._eval_set()

    def train_dataloader(self) -> ResumableDataLoader:
        sampler = PKBatchSampler(self.train_set.labels, self.p, self.k, self.seed)
        return ResumableDataLoader(
            self.train_set,
            batch_sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.eval_set, batch_size=self.batch_size, num_workers=self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
