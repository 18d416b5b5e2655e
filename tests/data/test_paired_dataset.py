"""Shapes, frame selection, padding and loader behaviour of the paired prompt/robot dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from episode_fixtures import LENGTHS, assert_levels, demo_level, robot_level
from torch.utils.data import DataLoader

from vid2robot.data.augment import VideoAugmentation
from vid2robot.data.paired_dataset import FrameCache, PairedVideoDataset


def test_items_shapes_window_and_padding(tiny_dataset: Path) -> None:
    ds = PairedVideoDataset(
        tiny_dataset, split="train", image_size=24, prompt_frames=4, state_frames=3, horizon=5, augment=False
    )
    assert len(ds) == sum(LENGTHS[i] for i in (0, 1, 3, 4))
    index = ds.items.index((0, 1))  # episode 0 (12 steps), t = 1
    item = ds[index]
    assert item["prompt_video"].shape == (4, 3, 24, 24) and item["prompt_video"].dtype == torch.float32
    assert item["robot_video"].shape == (3, 3, 24, 24)
    assert_levels(item["robot_video"], [robot_level(t) for t in (0, 0, 1)])  # padded with the first frame
    assert item["actions"].shape == (5, 4) and item["action_is_pad"].tolist() == [False] * 5
    torch.testing.assert_close(item["actions"][:, 0], torch.arange(1, 6) / 100)
    assert item["task"] == "reach the object" and item["task_index"] == 0 and item["timestep"] == 1
    # The prompt comes from the other training episode of the task, through the demonstrator camera,
    # with its first and last frames.
    assert item["prompt_episode_index"] == 1
    prompt = item["prompt_video"]
    assert_levels(prompt[[0, -1]], [demo_level(0), demo_level(LENGTHS[1] - 1)])
    means = prompt.mean(dim=(1, 2, 3))
    assert torch.all(means[1:] < means[:-1])  # uniform in between, in order

    end = ds[ds.items.index((0, 10))]
    assert end["action_is_pad"].tolist() == [False, False, True, True, True]
    torch.testing.assert_close(end["actions"][2:], end["actions"][1:2].expand(3, 4))  # padded with the last


def test_robot_trajectory_is_the_items_own_episode(tiny_dataset: Path) -> None:
    ds = PairedVideoDataset(
        tiny_dataset, split="train", image_size=24, prompt_frames=4, augment=False, robot_trajectory_frames=3
    )
    item = ds[ds.items.index((0, 5))]
    # The robot camera of episode 0 (12 frames) over its whole length, whatever the timestep.
    assert item["robot_trajectory"].shape == (3, 3, 24, 24)
    assert_levels(item["robot_trajectory"], [robot_level(t) for t in (0, 6, 11)])
    assert "robot_trajectory" not in PairedVideoDataset(tiny_dataset, split="train", image_size=24)[0]
    with pytest.raises(ValueError, match="k must be >= 2"):
        PairedVideoDataset(tiny_dataset, split="train", robot_trajectory_frames=1)


def test_same_episode_prompt_and_robot_camera(tiny_dataset: Path) -> None:
    ds = PairedVideoDataset(
        tiny_dataset, split="val", image_size=32, prompt_frames=2, prompt_camera="robot", prompt_source="same"
    )
    item = ds[0]
    assert item["prompt_episode_index"] == item["episode_index"] == 2
    assert_levels(item["prompt_video"], [robot_level(0), robot_level(LENGTHS[2] - 1)])


def test_augmentation_is_per_video_and_train_only(tiny_dataset: Path) -> None:
    paper = VideoAugmentation.paper()
    train = PairedVideoDataset(
        tiny_dataset, split="train", image_size=32, state_frames=4, augmentation=paper, seed=3
    )
    plain = PairedVideoDataset(
        tiny_dataset, split="train", image_size=32, state_frames=4, augment=False, seed=3
    )
    assert train.augment and not PairedVideoDataset(tiny_dataset, split="val", prompt_source="same").augment
    index = train.items.index((1, 10))
    augmented, clean = train[index]["robot_video"], plain[index]["robot_video"]
    assert not torch.allclose(augmented, clean)
    # Flat frames stay flat under crop+jitter: one colour transform shared by the whole video keeps the
    # ordering of the grey levels.
    means = augmented.mean(dim=(1, 2, 3))
    assert torch.all(means[1:] >= means[:-1])
    torch.testing.assert_close(train[index]["robot_video"], augmented)  # deterministic given the seeds


def test_bad_options_name_the_problem(tiny_dataset: Path) -> None:
    with pytest.raises(ValueError, match=r"prompt_camera='human'.*choose from \['robot', 'demonstrator'\]"):
        PairedVideoDataset(tiny_dataset, prompt_camera="human")
    with pytest.raises(ValueError, match="prompt_source must be one of"):
        PairedVideoDataset(tiny_dataset, prompt_source="random")
    with pytest.raises(ValueError, match=r"at least 2 'val' episodes per task"):
        PairedVideoDataset(tiny_dataset, split="val")
    with pytest.raises(ValueError, match="k must be >= 2"):
        PairedVideoDataset(tiny_dataset, prompt_frames=1)


def test_multi_worker_loader_matches_single_process(tiny_dataset: Path) -> None:
    ds = PairedVideoDataset(
        tiny_dataset, split="train", image_size=16, prompt_frames=4, state_frames=2, augment=False
    )
    single = list(DataLoader(ds, batch_size=8))
    multi = list(DataLoader(ds, batch_size=8, num_workers=2))
    assert len(single) == len(multi)
    for a, b in zip(single, multi, strict=True):
        torch.testing.assert_close(a["prompt_video"], b["prompt_video"])
        torch.testing.assert_close(a["actions"], b["actions"])
        assert a["task"] == b["task"]


def test_augmented_loading_repeats_given_the_seeds(tiny_dataset: Path) -> None:
    """Two worker processes, augmentation on: the same loader seed gives the same batches, another does not."""
    ds = PairedVideoDataset(tiny_dataset, split="train", image_size=16, prompt_frames=4, state_frames=2)

    def first_batch(seed: int) -> torch.Tensor:
        loader = DataLoader(
            ds, batch_size=8, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(seed)
        )
        return next(iter(loader))["robot_video"]

    torch.testing.assert_close(first_batch(0), first_batch(0))
    assert not torch.allclose(first_batch(0), first_batch(1))


def test_robot_cache_gives_the_same_items_within_its_budget(tiny_dataset: Path) -> None:
    kwargs = dict(split="train", image_size=24, prompt_frames=4, state_frames=3, augment=False)
    seeking = PairedVideoDataset(tiny_dataset, **kwargs)
    episode_bytes = seeking.episodes.episode(0).frames("robot").nbytes
    cached = PairedVideoDataset(tiny_dataset, robot_cache_mb=1.5 * episode_bytes / 2**20, **kwargs)
    for index in range(0, len(seeking), 3):
        torch.testing.assert_close(
            cached[index]["robot_video"], seeking[index]["robot_video"], rtol=0, atol=0
        )
    # The budget holds about one and a half episodes: only the most recent one stays.
    assert len(cached._robot_cache) == 1
    with pytest.raises(ValueError, match="robot_cache_mb"):
        PairedVideoDataset(tiny_dataset, robot_cache_mb=-1, **kwargs)


def test_several_prompt_cameras_mix_pair_kinds(tiny_dataset: Path) -> None:
    ds = PairedVideoDataset(
        tiny_dataset, split="train", image_size=24, prompt_frames=2, prompt_camera=["robot", "demonstrator"]
    )
    cameras = [ds[i]["prompt_camera"] for i in range(len(ds))]
    assert set(cameras) == {"robot", "demonstrator"}
    plain = PairedVideoDataset(tiny_dataset, split="train", image_size=24, prompt_frames=2, augment=False)
    assert {plain[i]["prompt_camera"] for i in range(len(plain))} == {"demonstrator"}
    with pytest.raises(ValueError, match="at least one camera"):
        PairedVideoDataset(tiny_dataset, prompt_camera=[])


def test_frame_cache_keeps_the_most_recent_entries_within_its_bounds() -> None:
    loads: list[int] = []

    def loader(key: int, nbytes: int = 10):
        return lambda: loads.append(key) or np.zeros(nbytes, np.uint8)

    by_count = FrameCache(max_entries=2)
    for key in (1, 2, 1, 3, 1, 2):
        by_count.get(key, loader(key))
    assert loads == [1, 2, 3, 2] and len(by_count) == 2  # 1 stayed recent; 2 was evicted by 3
    loads.clear()
    by_bytes = FrameCache(max_bytes=25)
    for key in (1, 2, 3):
        by_bytes.get(key, loader(key))
    assert len(by_bytes) == 2
    by_bytes.get(4, loader(4, nbytes=100))  # over budget alone: kept, everything older dropped
    assert len(by_bytes) == 1 and by_bytes.get(4, loader(99)).nbytes == 100 and loads == [1, 2, 3, 4]
