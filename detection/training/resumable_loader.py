"""A data loader whose order and per-item randomness survive interruption, for exact training resume.

Lightning restores model, optimiser and loop counters from a checkpoint, but a plain ``DataLoader`` restarts
its epoch from the beginning with fresh random draws. Here the sampler's permutation and every item's random
seed are pure functions of ``(seed, epoch, position)``, and the loader records how many batches of the current
epoch it has handed out (Lightning saves that through the ``state_dict``/``load_state_dict`` protocol), so a
resumed run sees exactly the batches an uninterrupted run would have seen.

The sampler also shards by rank when ``torch.distributed`` is initialised (use it with the Trainer's
``use_distributed_sampler=False``): every rank sees a disjoint slice of the same epoch permutation.
Samplers that build whole batches (P x K identity batches) subclass :class:`ResumableBatchSampler`. A dataset
with a ``get_item(index, rng)`` method draws from the rng it is given; any other dataset is read with Python's,
NumPy's and torch's global generators seeded from the item's seed (and put back afterwards), so augmentations
written against the global generators resume exactly too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from detection.training.random_state import capture, restore


def process_rank_and_world() -> tuple[int, int]:
    """This process's rank and the world size of the initialised process group (else 0 and 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


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
        self._resume: tuple[int, int] | None = None  # (epoch, items already served) from a checkpoint

    def _rank_and_world(self) -> tuple[int, int]:
        if self._rank is not None and self._world is not None:
            return self._rank, self._world
        return process_rank_and_world()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, batches_served: int, batch_size: int) -> None:
        """Continue ``epoch`` after its first ``batches_served`` batches (a checkpoint's position)."""
        self.epoch, self._resume = epoch, (epoch, batches_served * batch_size)

    def pending_batches(self, batch_size: int) -> int:
        """Batches of the current epoch already served before a resume (0 unless resuming this epoch)."""
        return _pending(self._resume, self.epoch) // batch_size

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
        start, self._resume = _pending(self._resume, self.epoch), None
        for index, item_seed in zip(positions[start:], seeds[start:], strict=True):
            yield int(index), int(item_seed)


def _pending(resume: tuple[int, int] | None, epoch: int) -> int:
    """What a checkpoint's position skips of ``epoch``: nothing unless it was saved during this very epoch (a
    checkpoint at an epoch's end resumes at the next epoch, which the trainer sets, from its start)."""
    return resume[1] if resume is not None and resume[0] == epoch else 0


class ResumableBatchSampler(Sampler[list[tuple[int, int]]]):
    """Base of batch samplers that resume mid-epoch: :meth:`batches` draws an epoch's batches of dataset
    indices from the rng it is given (one per epoch and rank); this class adds the per-item seeds, the epoch
    and the skip."""

    def __init__(self, num_batches: int, seed: int = 0) -> None:
        self.num_batches, self.seed, self.epoch = num_batches, seed, 0
        self._resume: tuple[int, int] | None = None  # (epoch, batches already served) from a checkpoint

    def batches(self, rng: np.random.Generator) -> Iterator[list[int]]:
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, batches_served: int, batch_size: int) -> None:
        """Continue ``epoch`` after its first ``batches_served`` batches (a checkpoint's position)."""
        self.epoch, self._resume = epoch, (epoch, batches_served)

    def pending_batches(self, batch_size: int) -> int:
        return _pending(self._resume, self.epoch)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        rank, _ = process_rank_and_world()  # ranks draw apart
        seeds = np.random.default_rng([self.seed, self.epoch, rank, 1])
        start, self._resume = _pending(self._resume, self.epoch), None
        for number, batch in enumerate(self.batches(np.random.default_rng([self.seed, self.epoch, rank]))):
            item_seeds = seeds.integers(0, 2**31 - 1, len(batch))
            if number >= start:
                yield [(int(i), int(s)) for i, s in zip(batch, item_seeds, strict=True)]


class SeededItems(Dataset):
    """Adapts a dataset to the ``(index, seed)`` keys of the samplers above: ``get_item(index, rng)`` where the
    dataset has one, else ``dataset[index]`` under global generators seeded from the item's seed."""

    def __init__(self, dataset: Any) -> None:
        if not hasattr(dataset, "__getitem__") and not callable(getattr(dataset, "get_item", None)):
            raise TypeError(f"{type(dataset).__name__} has neither get_item(index, rng) nor __getitem__")
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, item_seed = key
        if callable(getattr(self.dataset, "get_item", None)):
            return self.dataset.get_item(index, np.random.default_rng(item_seed))
        saved = capture()  # the caller's generators, put back whatever the dataset draws
        random.seed(item_seed)
        np.random.seed(item_seed)
        torch.manual_seed(item_seed)
        try:
            return self.dataset[index]
        finally:
            restore(saved)


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` over a :class:`ResumableRandomSampler` (``sampler=``) or a
    :class:`ResumableBatchSampler` (``batch_sampler=``) that can resume mid-epoch.

    Its own torch generator keeps it from drawing on the global one when an epoch's iterator is made, so a
    resumed run's global random state (:mod:`detection.training.random_state`) stays the uninterrupted run's."""

    def __init__(
        self,
        dataset: Any,
        *,
        sampler: ResumableRandomSampler | None = None,
        batch_sampler: ResumableBatchSampler | None = None,
        **kwargs: Any,
    ) -> None:
        if (sampler is None) == (batch_sampler is None):
            raise TypeError("pass exactly one of sampler= (ResumableRandomSampler) or batch_sampler=")
        kwargs.setdefault("generator", torch.Generator().manual_seed(0))
        keyed = dataset if isinstance(dataset, SeededItems) else SeededItems(dataset)
        if sampler is not None:
            super().__init__(keyed, sampler=sampler, **kwargs)
        else:
            super().__init__(keyed, batch_sampler=batch_sampler, **kwargs)
        self._batches_served = 0

    @property
    def _resumable(self) -> ResumableRandomSampler | ResumableBatchSampler:
        return self.sampler if isinstance(self.sampler, ResumableRandomSampler) else self.batch_sampler

    def __iter__(self) -> Iterator[Any]:
        self._batches_served = self._resumable.pending_batches(max(self.batch_size or 1, 1))
        for batch in super().__iter__():
            self._batches_served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._resumable.epoch, "batches_served": self._batches_served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resumable.resume_at(int(state["epoch"]), int(state["batches_served"]), self.batch_size or 1)
