"""The resumable samplers/loader: seeded epochs, rank shards, batch samplers, datasets drawing from the global
generators, and mid-epoch positions."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from detection.training.resumable_loader import (
    ResumableBatchSampler,
    ResumableDataLoader,
    ResumableRandomSampler,
)


class Draws:
    """A dataset whose item is its index and one draw from the item's generator."""

    def __len__(self) -> int:
        return 10

    def get_item(self, index: int, rng: np.random.Generator) -> tuple[int, float]:
        return index, float(rng.random())


class GlobalDraws:
    """A dataset written against the global generators, as torchvision-style augmentations are."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int) -> tuple[int, float, float, float]:
        return index, random.random(), float(np.random.random()), float(torch.rand(()))


class PairBatches(ResumableBatchSampler):
    """Two random items per batch, five batches an epoch."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(num_batches=5, seed=seed)

    def batches(self, rng: np.random.Generator) -> Iterator[list[int]]:
        for _ in range(self.num_batches):
            yield rng.choice(10, 2, replace=False).tolist()


def interrupt_and_resume(make_loader, stop_after: int) -> tuple[list, list]:
    """The batches of an uninterrupted epoch, and those of one stopped after ``stop_after`` batches and
    resumed by a fresh loader from the stopped one's state."""
    full = list(make_loader())
    interrupted = make_loader()
    iterator = iter(interrupted)
    seen = [next(iterator) for _ in range(stop_after)]
    resumed = make_loader()
    resumed.load_state_dict(interrupted.state_dict())
    return full, seen + list(resumed)


def test_each_epoch_is_a_seeded_permutation() -> None:
    sampler = ResumableRandomSampler(10, seed=3)
    first = [i for i, _ in sampler]
    assert sorted(first) == list(range(10))
    assert [i for i, _ in sampler] == first  # same epoch, same order
    sampler.set_epoch(1)
    assert [i for i, _ in sampler] != first


def test_rank_shards_are_disjoint_and_cover_the_epoch() -> None:
    shards = [[i for i, _ in ResumableRandomSampler(10, seed=1, rank=r, world_size=2)] for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 5
    assert sorted(shards[0] + shards[1]) == list(range(10))
    padded = [[i for i, _ in ResumableRandomSampler(7, seed=1, rank=r, world_size=2)] for r in range(2)]
    assert len(padded[0]) == len(padded[1]) == 4  # equal work per rank: the head of the epoch is repeated
    assert set(padded[0] + padded[1]) == set(range(7))


def test_loader_resumes_mid_epoch_with_the_same_items_and_draws() -> None:
    def loader() -> ResumableDataLoader:
        return ResumableDataLoader(Draws(), sampler=ResumableRandomSampler(10, seed=0), batch_size=2)

    interrupted = loader()
    iterator = iter(interrupted)
    next(iterator), next(iterator)
    assert interrupted.state_dict() == {"epoch": 0, "batches_served": 2}
    full, resumed = interrupt_and_resume(loader, 2)
    for expected, got in zip(full, resumed, strict=True):
        for a, b in zip(expected, got, strict=True):
            assert a.tolist() == b.tolist()


@pytest.mark.parametrize("sampling", ["sampler", "batch_sampler"])
def test_datasets_on_the_global_generators_and_batch_samplers_resume_exactly(sampling: str) -> None:
    def loader() -> ResumableDataLoader:
        if sampling == "sampler":
            return ResumableDataLoader(
                GlobalDraws(), sampler=ResumableRandomSampler(10, seed=4), batch_size=2
            )
        return ResumableDataLoader(GlobalDraws(), batch_sampler=PairBatches(seed=4))

    torch.manual_seed(7)
    before = torch.get_rng_state()
    full, resumed = interrupt_and_resume(loader, 3)
    assert torch.equal(torch.get_rng_state(), before), "reading items leaves the caller's generator alone"
    assert len(full) == 5
    for expected, got in zip(full, resumed, strict=True):
        for a, b in zip(expected, got, strict=True):
            assert a.tolist() == b.tolist()
    draws = torch.stack([torch.stack(batch[1:], 1) for batch in full]).flatten(0, 1)
    assert len(set(draws[:, 0].tolist())) == 10, "every item gets its own draws"


def test_empty_dataset_and_unreadable_datasets_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        ResumableRandomSampler(0)
    with pytest.raises(TypeError, match="neither get_item"):
        ResumableDataLoader(object(), sampler=ResumableRandomSampler(3))
    with pytest.raises(TypeError, match="exactly one"):
        ResumableDataLoader(Draws(), sampler=ResumableRandomSampler(10), batch_sampler=PairBatches())


@pytest.mark.parametrize("sampling", ["sampler", "batch_sampler"])
def test_a_position_saved_at_an_epochs_end_resumes_the_next_epoch_whole(sampling: str) -> None:
    def loader() -> ResumableDataLoader:
        if sampling == "sampler":
            return ResumableDataLoader(Draws(), sampler=ResumableRandomSampler(10, seed=2), batch_size=2)
        return ResumableDataLoader(Draws(), batch_sampler=PairBatches(seed=2))

    straight = loader()
    list(straight)  # epoch 0 to its end: the trainer saves this position, then sets the next epoch
    state = straight.state_dict()
    assert state == {"epoch": 0, "batches_served": 5}
    straight._resumable.set_epoch(1)
    expected = list(straight)
    resumed = loader()
    resumed.load_state_dict(state)
    resumed._resumable.set_epoch(1)  # as Lightning does at the start of each epoch
    got = list(resumed)
    assert len(got) == len(expected) == 5, "a finished epoch's position must not skip the next epoch"
    for a, b in zip(expected, got, strict=True):
        for x, y in zip(a, b, strict=True):
            assert x.tolist() == y.tolist()
