"""Round trip, laziness and error messages of the episode format (real mp4 files)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from episode_fixtures import LENGTHS, TINY_INFO, assert_levels, demo_level, flat_video, robot_level

from vid2robot.data.episode_dataset import EpisodeDataset
from vid2robot.data.episode_format import EpisodeWriter, write_episode
from vid2robot.data.video_io import VideoDecodeError, read_frames, write_video


def test_layout_and_metadata(tiny_dataset: Path) -> None:
    info = json.loads((tiny_dataset / "meta" / "info.json").read_text())
    assert info["total_episodes"] == len(LENGTHS) and info["total_frames"] == sum(LENGTHS)
    assert info["action_dim"] == 4 and info["state_dim"] == 3 and info["cameras"] == ["robot", "demonstrator"]
    episodes = pq.read_table(tiny_dataset / "meta" / "episodes.parquet").to_pydict()
    assert episodes["length"] == list(LENGTHS) and episodes["seed"] == [100 + i for i in range(6)]
    for cam in ("robot", "demonstrator"):
        assert (tiny_dataset / "videos" / cam / "chunk-000" / "episode_000005.mp4").is_file()
    steps = pq.read_table(tiny_dataset / "data" / "chunk-000" / "episode_000001.parquet").to_pydict()
    assert steps["frame_index"] == list(range(20))
    np.testing.assert_allclose(steps["timestamp"], np.arange(20) / 10, rtol=1e-6)


def test_round_trip(tiny_dataset: Path) -> None:
    ds = EpisodeDataset(tiny_dataset)
    assert len(ds) == 6 and ds.tasks == ["reach-v3", "push-v3"]
    assert ds.select(split="val") == [2, 5] and ds.select(task="push-v3", split="train") == [3, 4]
    ep = ds.episode(1)
    assert ep.record.task_text == "reach the object" and ep.record.split == "train"
    np.testing.assert_allclose(ep.actions[:, 0], np.arange(20) / 100, rtol=1e-6)
    np.testing.assert_allclose(ep.states[:, 2], np.arange(20) * 3)
    assert ep.actions.dtype == np.float32 and ep.actions.shape == (20, 4)
    robot = ep.frames("robot")
    assert robot.shape == (20, 32, 32, 3) and robot.dtype == np.uint8
    assert_levels(robot, [robot_level(t) for t in range(20)])
    demo = ep.frames("demonstrator", [19, 0, 7, 7])
    assert_levels(demo, [demo_level(t) for t in (19, 0, 7, 7)])


@pytest.mark.parametrize("indices", [[0], [19], [3, 4, 5], [18, 2, 11], list(range(20))[::-1], []])
def test_partial_decode_matches_full_decode(tiny_dataset: Path, indices: list[int]) -> None:
    path = EpisodeDataset(tiny_dataset).episode(1).video_path("robot")
    full = read_frames(path)
    np.testing.assert_array_equal(read_frames(path, indices, gop=4), full[indices])


def test_writer_is_deterministic(tmp_path: Path) -> None:
    video = flat_video([robot_level(t) for t in range(12)])
    video[:, 5:15, 8:20] = 200  # some structure for the encoder
    hashes = []
    for run in range(2):
        root = tmp_path / f"run{run}"
        with EpisodeWriter(root, TINY_INFO) as writer:
            writer.add_episode(
                {"robot": video, "demonstrator": video[:, ::-1]}, np.zeros((12, 4)), np.ones((12, 3)), "t", 0
            )
        hashes.append({p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()})
    assert hashes[0] == hashes[1]


def test_writer_rejects_bad_shapes(tmp_path: Path) -> None:
    good = {"robot": flat_video([0] * 5), "demonstrator": flat_video([0] * 5)}
    actions, states = np.zeros((5, 4)), np.zeros((5, 3))
    with EpisodeWriter(tmp_path / "a", TINY_INFO) as writer:
        with pytest.raises(ValueError, match=r"actions must be \[T>0, 4\]"):
            writer.add_episode(good, np.zeros((5, 3)), states, "t", 0)
        with pytest.raises(ValueError, match=r"states must be \[5, 3\]"):
            writer.add_episode(good, actions, np.zeros((4, 3)), "t", 0)
        with pytest.raises(ValueError, match=r"frames\['robot'\] must be uint8 \[5, 32, 32, 3\]"):
            writer.add_episode({**good, "robot": good["robot"].astype(np.float32)}, actions, states, "t", 0)
        with pytest.raises(ValueError, match="exactly the cameras"):
            writer.add_episode({"robot": good["robot"]}, actions, states, "t", 0)
        with pytest.raises(ValueError, match="finite"):
            writer.add_episode(good, np.full((5, 4), np.nan), states, "t", 0)
        with pytest.raises(ValueError, match="split must be one of"):
            writer.add_episode(good, actions, states, "t", 0, split="holdout")
    with pytest.raises(FileExistsError, match="already holds a dataset; pass overwrite=True"):
        EpisodeWriter(tmp_path / "a", TINY_INFO)


def _files(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_overwrite_replaces_only_a_dataset_and_only_when_complete(tmp_path: Path) -> None:
    """overwrite=True never removes a folder that is not a dataset, and a failed or interrupted write leaves
    the old dataset whole (the new one is staged beside it and swapped in by close)."""
    video = {c: flat_video([1] * 4) for c in TINY_INFO.cameras}
    user = tmp_path / "data"
    (user / "other_dataset").mkdir(parents=True)
    (user / "notes.txt").write_text("mine")
    before = _files(user)
    with pytest.raises(
        FileExistsError, match=r"is not a vid2robot episode dataset .* nothing there is replaced"
    ):
        EpisodeWriter(user, TINY_INFO, overwrite=True)
    assert _files(user) == before and (user / "other_dataset").is_dir()
    root = tmp_path / "ds"
    with EpisodeWriter(root, TINY_INFO) as writer:
        writer.add_episode(video, np.zeros((4, 4)), np.zeros((4, 3)), "old", 0)
    old = _files(root)
    with (
        pytest.raises(RuntimeError, match="interrupted"),
        EpisodeWriter(root, TINY_INFO, overwrite=True) as writer,
    ):
        writer.add_episode(video, np.ones((4, 4)), np.zeros((4, 3)), "new", 0)
        raise RuntimeError("interrupted")
    assert _files(root) == old and sorted(p.name for p in tmp_path.iterdir()) == ["data", "ds"]
    writer = EpisodeWriter(root, TINY_INFO, overwrite=True)
    writer.add_episode(video, np.ones((4, 4)), np.zeros((4, 3)), "new", 0)
    assert _files(root) == old  # nothing replaced before close
    writer.close()
    assert EpisodeDataset(root).records[0].task == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "ds"]  # no staging or old copy left
    with pytest.raises(FileExistsError, match="is a file"):
        EpisodeWriter(user / "notes.txt", TINY_INFO, overwrite=True)


def test_incomplete_dataset_and_broken_videos(tiny_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"info.json is missing"):
        EpisodeDataset(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset, copy)
    ds = EpisodeDataset(copy)
    missing = ds.episode(0).video_path("robot")
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=r"episode_000000.mp4 is missing"):
        ds.episode(0).frames("robot")
    garbage = ds.episode(1).video_path("robot")
    garbage.write_bytes(b"this is not an mp4" * 100)
    with pytest.raises(VideoDecodeError, match=r"episode_000001.mp4: cannot decode"):
        ds.episode(1).frames("robot", [0])
    truncated = ds.episode(3).video_path("demonstrator")
    write_video(truncated, flat_video([0] * 4), fps=10)  # 4 frames where the episode has 15
    with pytest.raises(VideoDecodeError, match="decoded 4 frames, expected 15"):
        ds.episode(3).frames("demonstrator")
    with pytest.raises(VideoDecodeError, match="truncated"):
        ds.episode(3).frames("demonstrator", [10])
    with pytest.raises(IndexError, match="out of range for 15 frames"):
        ds.episode(3).frames("robot", [15])
    with pytest.raises(KeyError, match="unknown camera 'wrist'"):
        ds.episode(3).frames("wrist")
    with pytest.raises(KeyError, match="unknown task 'fly-v3'"):
        ds.select(task="fly-v3")


def test_write_episode_for_workers(tmp_path: Path) -> None:
    record = write_episode(
        tmp_path, TINY_INFO, 1234, {c: flat_video([1, 2]) for c in TINY_INFO.cameras}, np.zeros((2, 4)),
        np.zeros((2, 3)), "t", 0, "t", True, 7,
    )  # fmt: skip
    assert record.episode_index == 1234 and record.length == 2
    assert (tmp_path / "data" / "chunk-001" / "episode_001234.parquet").is_file()


def test_contact_sheet_shows_each_episode_and_camera(tiny_dataset: Path, tmp_path: Path) -> None:
    from vid2robot.data.contact_sheet import main

    out = tmp_path / "sheet.png"
    main(
        [
            f"{tiny_dataset}:robot",
            str(tiny_dataset),
            "--episodes",
            "0",
            "1",
            "--frames",
            "3",
            "--size",
            "16",
            "--out",
            str(out),
        ]
    )
    image = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(out))
    rows = 2 * 1 + 2 * len(TINY_INFO.cameras)  # robot only for the first, every camera for the second
    assert image.shape[0] == rows * (16 + 4) and image.shape[1] > 3 * 16
