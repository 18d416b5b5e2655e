"""LeRobot v3 import on a tiny v3 layout written here (two episodes packed in one parquet and one mp4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from episode_fixtures import assert_levels, flat_video, robot_level

from vid2robot.data.lerobot_import import import_lerobot_v3
from vid2robot.data.video_io import write_video

LENGTHS = (5, 7)
FPS = 10


def write_tiny_v3(root: Path) -> None:
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
    pq.write_table(
        pa.table({
            "action": [[float(i), -float(i)] for i in range(total)],
            "observation.state": [[float(i)] * 3 for i in range(total)],
            "timestamp": (frame / FPS).astype(np.float32),
            "frame_index": frame,
            "episode_index": episode,
            "index": np.arange(total),
            "task_index": episode,  # episode 0 picks, episode 1 stacks
        }),
        root / "data" / "chunk-000" / "file-000.parquet",
    )  # fmt: skip
    write_video(
        root / "videos" / key / "chunk-000" / "file-000.mp4",
        flat_video([robot_level(i) for i in range(total)]),
        FPS,
    )
    starts = [0, LENGTHS[0]]
    pq.write_table(
        pa.table({
            "episode_index": [0, 1],
            "tasks": [["pick the cube"], ["stack the cube"]],
            "length": list(LENGTHS),
            "data/chunk_index": [0, 0],
            "data/file_index": [0, 0],
            "dataset_from_index": starts,
            "dataset_to_index": [LENGTHS[0], total],
            f"videos/{key}/chunk_index": [0, 0],
            f"videos/{key}/file_index": [0, 0],
            f"videos/{key}/from_timestamp": [s / FPS for s in starts],
            f"videos/{key}/to_timestamp": [(s + n) / FPS for s, n in zip(starts, LENGTHS, strict=True)],
        }),
        root / "meta" / "episodes" / "chunk-000" / "file-000.parquet",
    )  # fmt: skip


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
