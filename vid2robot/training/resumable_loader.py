"""A data loader whose order and per-item randomness survive interruption, for exact training resume.

Lightning restores model, optimiser and loop counters from a checkpoint, but a plain ``DataLoader`` restarts
its epoch from the beginning with fresh random draws. Here the sampler's permutation and every item's random
seed are pure functions of ``(seed, epoch, position)``, and the loader records how many batches of the current
epoch it has handed out (Lightning saves that through the ``state_dict``/``load_state_dict`` protocol), so a
resumed run sees exactly the batches an uninterrupted run would have seen.

The sampler also shards by rank when ``torch.distributed`` is initialised (use it with the Trainer's
``use_distributed_sampler=False``): every rank sees a disjoint slice of the same epoch permutation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler


class ResumableRandomSampler(Sampler[tuple[int, int]]):
    """Yields ``(dataset_index, item_seed)`` pairs: a seeded permutation per epoch, sharded by rank."""

    def __init__(
        self,
        num_items: int,
        seed: int = 0,
        shuffle: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        """``rank``/``world_size`` default to the initialised process group's (else 0 and 1)."""
        if num_items <= 0:
            raise ValueError(f"the dataset is empty (num_items={num_items}); nothing to sample")
        self.num_items = num_items
        self._rank, self._world = rank, world_size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.skip = 0

    def _rank_and_world(self) -> tuple[int, int]:
        if self._rank is not None and self._world is not None:
            return self._rank, self._world
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _positions(self) -> np.ndarray:
        rank, world = self._rank_and_world()
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.num_items) if self.shuffle else np.arange(self.num_items)
        padded = np.resize(order, len(self) * world)  # repeat the head so every rank gets equal work
        return padded[rank::world]

    def __len__(self) -> int:
        _, world = self._rank_and_world()
        return -(-self.num_items // world)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rank, _ = self._rank_and_world()
        positions = self._positions()
        seeds = np.random.default_rng([self.seed, self.epoch, rank, 1]).integers(0, 2**31 - 1, len(positions))
        start, self.skip = self.skip, 0
        for index, item_seed in zip(positions[start:], seeds[start:], strict=True):
            yield int(index), int(item_seed)


class SeededItems(Dataset):
    """Adapts a dataset with ``get_item(index, rng)`` to the ``(index, seed)`` keys of the sampler above."""

    def __init__(self, dataset: Any) -> None:
        if not callable(getattr(dataset, "get_item", None)):
            raise TypeError(
                f"{type(dataset).__name__} needs a get_item(index, rng) method for seeded sampling"
            )
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, item_seed = key
        return self.dataset.get_item(index, np.random.default_rng(item_seed))


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` over a :class:`ResumableRandomSampler` that can resume mid-epoch."""

    def __init__(self, dataset: Any, *, sampler: ResumableRandomSampler, **kwargs: Any) -> None:
        super().__init__(
            SeededItems(dataset) if not isinstance(dataset, SeededItems) else dataset,
            sampler=sampler,
            **kwargs,
        )
        self._batches_served = 0

    def __iter__(self) -> Iterator[Any]:
        sampler: ResumableRandomSampler = self.sampler  # type: ignore[assignment]
        self._batches_served = sampler.skip // max(self.batch_size or 1, 1)
        for batch in super().__iter__():
            self._batches_served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        sampler: ResumableRandomSampler = self.sampler  # type: ignore[assignment]
        return {"epoch": sampler.epoch, "batches_served": self._batches_served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler: ResumableRandomSampler = self.sampler  # type: ignore[assignment]
        sampler.set_epoch(int(state["epoch"]))
        sampler.skip = int(state["batches_served"]) * (self.batch_size or 1)
