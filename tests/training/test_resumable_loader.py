"""The resumable sampler/loader: seeded epochs, rank shards, and mid-epoch positions."""

from __future__ import annotations

import numpy as np
import pytest

from vid2robot.training.resumable_loader import ResumableDataLoader, ResumableRandomSampler


class Draws:
    """A dataset whose item is its index and one draw from the item's generator."""

    def __len__(self) -> int:
        return 10

    def get_item(self, index: int, rng: np.random.Generator) -> tuple[int, float]:
        return index, float(rng.random())


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

    full = [batch for batch in loader()]
    interrupted = loader()
    iterator = iter(interrupted)
    seen = [next(iterator) for _ in range(2)]
    state = interrupted.state_dict()
    assert state == {"epoch": 0, "batches_served": 2}
    resumed = loader()
    resumed.load_state_dict(state)
    rest = list(resumed)
    for expected, got in zip(full, seen + rest, strict=True):
        for a, b in zip(expected, got, strict=True):
            assert a.tolist() == b.tolist()


def test_empty_dataset_and_missing_get_item_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        ResumableRandomSampler(0)
    with pytest.raises(TypeError, match="get_item"):
        ResumableDataLoader([1, 2, 3], sampler=ResumableRandomSampler(3))
