"""Lightning data module over an episode dataset: paired (prompt video, robot window, action) items."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from torch.utils.data import DataLoader, Subset

from detection.training.resumable_loader import ResumableDataLoader, ResumableRandomSampler
from vid2robot.data.augment import VideoAugmentation
from vid2robot.data.episode_dataset import EpisodeDataset
from vid2robot.data.paired_dataset import PairedVideoDataset
from vid2robot.data.stats import read_dataset_stats
from vid2robot.policy.action_normalization import check_actions_fit


def refuse_held_out_hands(episodes: EpisodeDataset) -> None:
    """Hand looks of the held-out pool exist for evaluation prompts only: never train on them."""
    if episodes.info.extra.get("hand", {}).get("pool") == "held_out":
        raise ValueError(
            f"{episodes.root} holds held-out hand looks (hand_pool=held_out), which are for evaluation "
            "prompts only; train on a dataset generated with hand_pool=seen"
        )


class PolicyDataModule(L.LightningDataModule):
    """Train on the ``train`` split (augmented, seeded, resumable), validate on a fixed subset of ``val``.

    Under DDP each rank reads its own shard of every epoch (the sampler shards by rank), so use it with
    ``trainer.use_distributed_sampler=false`` (the training config sets this).
    """

    def __init__(
        self,
        root: str,
        image_size: int = 96,
        prompt_frames: int = 16,
        state_frames: int = 8,
        horizon: int = 1,
        prompt_camera: str | list[str] = "demonstrator",
        robot_camera: str = "robot",
        prompt_source: str = "other",
        batch_size: int = 16,
        num_workers: int = 2,
        max_val_items: int = 256,
        seed: int = 0,
        robot_cache_mb: float = 512.0,
        robot_trajectory_frames: int = 0,
        augmentation: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1 or num_workers < 0 or max_val_items < 1:
            raise ValueError(
                f"need batch_size >= 1, num_workers >= 0, max_val_items >= 1; got {batch_size}, {num_workers}, "
                f"{max_val_items}"
            )
        if not (Path(root) / "meta" / "info.json").is_file():
            raise FileNotFoundError(
                f"{root} is not an episode dataset (no meta/info.json); generate one with vid2robot-datagen"
            )
        self.augmentation = VideoAugmentation.from_dict(augmentation or {})
        self.save_hyperparameters()
        self.train_set: PairedVideoDataset | None = None
        self._stats: dict | None = None
        self.val_set: Subset | None = None

    def _dataset(self, split: str) -> PairedVideoDataset:
        h = self.hparams
        if split == "train":
            refuse_held_out_hands(EpisodeDataset(h.root))
        dataset = PairedVideoDataset.for_policy(
            h,
            h.root,
            split=split,
            prompt_camera=h.prompt_camera,
            robot_camera=h.robot_camera,
            prompt_source=h.prompt_source,
            seed=h.seed,
            robot_cache_mb=h.robot_cache_mb,
            robot_trajectory_frames=h.robot_trajectory_frames,
            augmentation=self.augmentation,
        )
        return dataset

    @property
    def action_stats(self) -> dict | None:
        """The dataset's ``action`` statistics (``meta/stats.json``); None for a dataset without them, whose
        actions must then already lie in the tokenizer's [-1, 1] (checked in ``setup``)."""
        return self._stats.get("action") if self._stats is not None else None

    def _check_unmapped_actions(self, dataset: PairedVideoDataset) -> None:
        episodes = dataset.episodes
        indices = sorted({episode for episode, _ in dataset.items})
        values = np.concatenate([episodes.episode(i).actions for i in indices])
        check_actions_fit(float(values.min()), float(values.max()), str(episodes.root))

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self._stats = read_dataset_stats(self.hparams.root)
            self.train_set = self._dataset("train")
            if self._stats is None:
                self._check_unmapped_actions(self.train_set)
            val = self._dataset("val")
            stride = max(len(val) // self.hparams.max_val_items, 1)
            self.val_set = Subset(val, np.arange(0, len(val), stride)[: self.hparams.max_val_items].tolist())

    def _loader_options(self) -> dict[str, Any]:
        workers = self.hparams.num_workers
        return {
            "batch_size": self.hparams.batch_size,
            "num_workers": workers,
            "persistent_workers": workers > 0,
        }

    def train_dataloader(self) -> ResumableDataLoader:
        assert self.train_set is not None, "call setup() first"
        sampler = ResumableRandomSampler(len(self.train_set), seed=self.hparams.seed)
        return ResumableDataLoader(self.train_set, sampler=sampler, drop_last=True, **self._loader_options())

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None, "call setup() first"
        return DataLoader(self.val_set, shuffle=False, **self._loader_options())
