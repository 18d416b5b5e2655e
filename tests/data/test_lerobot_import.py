"""LeRobot v3 import on a tiny v3 layout written here (two episodes packed in one parquet and one mp4)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from episode_fixtures import assert_levels, flat_video, robot_level

from vid2robot.data.lerobot_import import import_lerobot_v3
from vid2robot.data.video_io import write_video

LENGTHS = (5, 7)
FPS = 10


def png_cell(level: int) -> dict:
    """An image cell as Hugging Face datasets stores one in parquet."""
    return {"bytes": cv2.imencode(".png", np.full((32, 32, 3), level, np.uint8))[1].tobytes(), "path": None}


def write_tiny_v3(
    root: Path, images_in_parquet: bool = False, reward: bool = False, task_change: bool = False
) -> None:
    """Two episodes (5 and 7 steps) packed in one parquet and one mp4, or with their frames in the parquet
    (``images_in_parquet``, LeRobot's ``use_videos=False``); ``reward`` adds a ``next.reward`` feature,
    ``task_change`` switches episode 1's task after its third step."""
    key = "observation.images.top"
    info = {
        "codebase_version": "v3.0",
        "robot_type": "so100",
        "fps": FPS,
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": {
            key: {"dtype": "video", "shape": [32, 32, 3], "names": ["height", "width", "channels"]},
            "observation.state": {"dtype": "float32", "shape": [3], "names": {"motors": ["a", "b", "c"]}},
            "action": {"dtype": "float32", "shape": [2], "names": ["x", "y"]},
        },
    }
    if images_in_parquet:
        info["features"][key] = {
            "dtype": "image",
            "shape": [32, 32, 3],
            "names": ["height", "width", "channels"],
        }
        del info["video_path"]
    if reward:
        info["features"]["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    (root / "data" / "chunk-000").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info))
    pq.write_table(
        pa.table({"task_index": [0, 1], "__index_level_0__": ["pick the cube", "stack the cube"]}),
        root / "meta" / "tasks.parquet",
    )
    total = sum(LENGTHS)
    episode = np.repeat([0, 1], LENGTHS)
    frame = np.concatenate([np.arange(n) for n in LENGTHS])
    columns = {
        "action": [[float(i), -float(i)] for i in range(total)],
        "observation.state": [[float(i)] * 3 for i in range(total)],
        "timestamp": (frame / FPS).astype(np.float32),
        "frame_index": frame,
        "episode_index": episode,
        "index": np.arange(total),
        "task_index": episode.copy(),  # episode 0 picks, episode 1 stacks
    }
    if task_change:
        columns["task_index"][LENGTHS[0] + 3 :] = 0
    if reward:
        columns["next.reward"] = np.zeros(total, np.float32)
    if images_in_parquet:
        columns[key] = [png_cell(robot_level(i)) for i in range(total)]
    else:
        write_video(
            root / "videos" / key / "chunk-000" / "file-000.mp4",
            flat_video([robot_level(i) for i in range(total)]),
            FPS,
        )
    pq.write_table(pa.table(columns), root / "data" / "chunk-000" / "file-000.parquet")
    starts = [0, LENGTHS[0]]
    episodes = {
        "episode_index": [0, 1],
        "tasks": [["pick the cube"], ["stack the cube"]],
        "length": list(LENGTHS),
        "data/chunk_index": [0, 0],
        "data/file_index": [0, 0],
        "dataset_from_index": starts,
        "dataset_to_index": [LENGTHS[0], total],
    }
    if not images_in_parquet:
        episodes |= {
            f"videos/{key}/chunk_index": [0, 0],
            f"videos/{key}/file_index": [0, 0],
            f"videos/{key}/from_timestamp": [s / FPS for s in starts],
            f"videos/{key}/to_timestamp": [(s + n) / FPS for s, n in zip(starts, LENGTHS, strict=True)],
        }
    pq.write_table(pa.table(episodes), root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")


def tiny_v3_stats() -> dict:
    """meta/stats.json of write_tiny_v3's data, as LeRobot computes it (count as a one-element list)."""
    steps = np.arange(sum(LENGTHS), dtype=np.float64)
    action, state = np.stack([steps, -steps], 1), np.stack([steps] * 3, 1)
    return {
        key: {"min": v.min(0).tolist(), "max": v.max(0).tolist(), "mean": v.mean(0).tolist(), "std": v.std(0).tolist(),
              "count": [len(v)]}
        for key, v in (("action", action), ("observation.state", state))
    }  # fmt: skip


def test_import_unpacks_episodes(tmp_path: Path) -> None:
    write_tiny_v3(tmp_path / "v3")
    ds = import_lerobot_v3(tmp_path / "v3", tmp_path / "out", progress=False)
    assert len(ds) == 2 and ds.info.cameras == ("top",) and ds.info.robot == "so100"
    assert ds.info.action_names == ("x", "y") and ds.info.state_names == ("a", "b", "c")
    second = ds.episode(1)
    assert second.length == 7 and second.record.task == "stack the cube" and second.record.task_index == 1
    np.testing.assert_allclose(second.actions[:, 0], np.arange(5, 12))
    np.testing.assert_allclose(second.states[:, 2], np.arange(5, 12))
    assert_levels(second.frames("top"), [robot_level(i) for i in range(5, 12)])
    assert_levels(ds.episode(0).frames("top"), [robot_level(i) for i in range(5)])


def test_rejects_other_versions(tmp_path: Path) -> None:
    write_tiny_v3(tmp_path / "v2")
    info = json.loads((tmp_path / "v2" / "meta" / "info.json").read_text()) | {"codebase_version": "v2.1"}
    (tmp_path / "v2" / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"codebase_version 'v2\.1' is not supported"):
        import_lerobot_v3(tmp_path / "v2", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="not a LeRobot dataset folder"):
        import_lerobot_v3(tmp_path / "nothing", tmp_path / "out2")


def test_frames_stored_in_the_parquet_are_imported(tmp_path: Path) -> None:
    write_tiny_v3(tmp_path / "v3", images_in_parquet=True)
    ds = import_lerobot_v3(tmp_path / "v3", tmp_path / "out", progress=False)
    assert ds.info.cameras == ("top",) and len(ds) == 2
    assert_levels(ds.episode(1).frames("top"), [robot_level(i) for i in range(5, 12)])


def test_an_episode_whose_task_changes_is_refused_and_dropped_features_are_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_tiny_v3(tmp_path / "v3", reward=True, task_change=True)
    with caplog.at_level(logging.WARNING, logger="vid2robot.data.lerobot_import"):
        ds = import_lerobot_v3(tmp_path / "v3", tmp_path / "out", progress=False)
    assert len(ds) == 1 and ds.episode(0).record.task == "pick the cube"
    assert "1 episodes refused, their task changes midway" in caplog.text
    assert "episode 1 (['stack the cube', 'pick the cube'])" in caplog.text
    assert (
        "features not carried over (the episode format has no field for them): ['next.reward']" in caplog.text
    )


def test_the_source_statistics_are_read_and_checked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_tiny_v3(tmp_path / "v3")
    stats_path = tmp_path / "v3" / "meta" / "stats.json"
    stats_path.write_text(json.dumps(tiny_v3_stats()))
    with caplog.at_level(logging.WARNING, logger="vid2robot.data.lerobot_import"):
        import_lerobot_v3(tmp_path / "v3", tmp_path / "agrees", progress=False)
    assert "stats.json" not in caplog.text
    other = tiny_v3_stats()
    other["action"]["max"] = [20.0, 0.0]  # as if computed over other data
    stats_path.write_text(json.dumps(other))
    with caplog.at_level(logging.WARNING, logger="vid2robot.data.lerobot_import"):
        import_lerobot_v3(tmp_path / "v3", tmp_path / "disagrees", progress=False)
    assert "meta/stats.json: action.max is [20.0, 0.0] but the imported data's is [11.0," in caplog.text
    other["observation.state"]["min"] = [0.0]
    stats_path.write_text(json.dumps(other))
    with pytest.raises(
        ValueError, match=r"stats.json: observation.state.min has 1 values but the feature has 3"
    ):
        import_lerobot_v3(tmp_path / "v3", tmp_path / "malformed", progress=False)
    assert not (tmp_path / "malformed").exists()
