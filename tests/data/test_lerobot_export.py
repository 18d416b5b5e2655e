"""LeRobot v3.0 export, and the round trips: export then import, import then export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from episode_fixtures import LENGTHS, assert_levels, demo_level, robot_level
from test_lerobot_import import FPS, tiny_v3_stats, write_tiny_v3

from vid2robot.cli.lerobot import main
from vid2robot.data.episode_dataset import EpisodeDataset
from vid2robot.data.lerobot_export import export_lerobot_v3
from vid2robot.data.lerobot_import import import_lerobot_v3
from vid2robot.data.lerobot_layout import read_tasks
from vid2robot.data.stats import read_dataset_stats
from vid2robot.data.video_io import read_frames

STATS = ("min", "max", "mean", "std", "q01", "q99")


def lerobot_rows(root: Path) -> pa.Table:
    """Every data row of a LeRobot dataset, in file order."""
    return pa.concat_tables(
        [pq.read_table(p) for p in sorted((root / "data").glob("chunk-*/file-*.parquet"))]
    )


def lerobot_episodes(root: Path) -> list[dict]:
    return pq.read_table(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()


def test_export_packs_episodes_as_lerobot_does(tiny_dataset: Path, tmp_path: Path) -> None:
    out = export_lerobot_v3(
        tiny_dataset, tmp_path / "lerobot", data_file_mb=0.002, video_file_mb=0.004, progress=False
    )
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10 and info["robot_type"] == "synthetic"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (6, sum(LENGTHS), 2)
    assert info["features"]["action"] == {
        "dtype": "float32",
        "shape": [4],
        "names": ["dx", "dy", "dz", "grip"],
    }
    assert info["features"]["observation.images.robot"]["dtype"] == "video"
    assert info["features"]["observation.images.robot"]["shape"] == [32, 32, 3]
    data_files = sorted((out / "data").glob("chunk-000/file-*.parquet"))
    video_files = sorted((out / "videos" / "observation.images.robot").glob("chunk-000/file-*.mp4"))
    assert 1 < len(data_files) < 6 and 1 < len(video_files) < 6, "several episodes per file, several files"
    assert read_tasks(out) == {0: "reach the object", 1: "push the object"}
    tasks_meta = json.loads(pq.read_schema(out / "meta" / "tasks.parquet").metadata[b"pandas"])
    assert tasks_meta["index_columns"] == [
        "task"
    ]  # pandas.read_parquet restores the task strings as the index

    rows, source = lerobot_rows(out), EpisodeDataset(tiny_dataset)
    np.testing.assert_array_equal(rows.column("index").to_numpy(), np.arange(sum(LENGTHS)))
    episodes = lerobot_episodes(out)
    for row, record in zip(episodes, source.records, strict=True):
        episode = source.episode(record.episode_index)
        steps = rows.slice(row["dataset_from_index"], row["length"])
        assert set(steps.column("episode_index").to_pylist()) == {row["episode_index"]}
        np.testing.assert_array_equal(
            np.stack(steps.column("action").to_numpy(zero_copy_only=False)), episode.actions
        )
        for camera in ("robot", "demonstrator"):
            key = f"observation.images.{camera}"
            video = out / f"videos/{key}/chunk-000/file-{row[f'videos/{key}/file_index']:03d}.mp4"
            start = round(row[f"videos/{key}/from_timestamp"] * FPS)
            # stream copy: the packed file decodes to exactly the stored frames
            np.testing.assert_array_equal(
                read_frames(video, range(start, start + record.length)), episode.frames(camera)
            )
        assert row["tasks"] == [record.task_text] and row["vid2robot/split"] == record.split
        assert row["stats/action/count"] == [record.length]
    stats = json.loads((out / "meta" / "stats.json").read_text())
    ours = read_dataset_stats(tiny_dataset)
    for name in STATS:
        np.testing.assert_allclose(stats["action"][name], ours["action"][name])
        np.testing.assert_allclose(stats["observation.state"][name], ours["observation.state"][name])
    image = stats["observation.images.robot"]
    assert (
        np.asarray(image["mean"]).shape == (3, 1, 1)
        and 0 <= np.min(image["min"]) <= np.max(image["max"]) <= 1
    )
    assert set(stats) >= {"timestamp", "frame_index", "episode_index", "index", "task_index"}


def test_export_then_import_gives_the_same_episodes(tiny_dataset: Path, tmp_path: Path) -> None:
    export_lerobot_v3(
        tiny_dataset, tmp_path / "lerobot", data_file_mb=0.002, video_file_mb=0.004, progress=False
    )
    back = import_lerobot_v3(tmp_path / "lerobot", tmp_path / "back", progress=False)
    source = EpisodeDataset(tiny_dataset)
    assert back.records == source.records  # task ids and indices, text, length, success, seed, split
    assert back.info.cameras == source.info.cameras and back.info.action_names == source.info.action_names
    assert back.info.state_names == source.info.state_names
    for record in source.records:
        ours, theirs = source.episode(record.episode_index), back.episode(record.episode_index)
        np.testing.assert_array_equal(theirs.actions, ours.actions)
        np.testing.assert_array_equal(theirs.states, ours.states)
        assert_levels(theirs.frames("robot"), [robot_level(t) for t in range(record.length)])
        assert_levels(theirs.frames("demonstrator"), [demo_level(t) for t in range(record.length)])
    before, after = read_dataset_stats(tiny_dataset), read_dataset_stats(tmp_path / "back")
    for feature in ("action", "observation.state"):
        for name in STATS:
            np.testing.assert_allclose(after[feature][name], before[feature][name])


def test_import_then_export_gives_the_same_lerobot_data(tmp_path: Path) -> None:
    write_tiny_v3(tmp_path / "v3")
    (tmp_path / "v3" / "meta" / "stats.json").write_text(json.dumps(tiny_v3_stats()))
    import_lerobot_v3(tmp_path / "v3", tmp_path / "ours", progress=False)
    export_lerobot_v3(tmp_path / "ours", tmp_path / "again", progress=False)
    original, again = lerobot_rows(tmp_path / "v3"), lerobot_rows(tmp_path / "again")
    for column in (
        "action",
        "observation.state",
        "timestamp",
        "frame_index",
        "episode_index",
        "index",
        "task_index",
    ):
        assert again.column(column).to_pylist() == original.column(column).to_pylist(), column
    assert read_tasks(tmp_path / "again") == read_tasks(tmp_path / "v3")
    stats, expected = json.loads((tmp_path / "again" / "meta" / "stats.json").read_text()), tiny_v3_stats()
    for feature in ("action", "observation.state"):
        for name in ("min", "max", "mean", "std", "count"):
            np.testing.assert_allclose(
                stats[feature][name], expected[feature][name], err_msg=f"{feature}.{name}"
            )
    starts = np.cumsum([0, *[row["length"] for row in lerobot_episodes(tmp_path / "again")]])
    for row, start in zip(lerobot_episodes(tmp_path / "again"), starts, strict=False):
        video = tmp_path / "again" / "videos" / "observation.images.top" / "chunk-000" / "file-000.mp4"
        first = round(row["videos/observation.images.top/from_timestamp"] * FPS)
        frames = read_frames(video, range(first, first + row["length"]))
        assert_levels(frames, [robot_level(i) for i in range(start, start + row["length"])])


def test_cli_refuses_to_replace_what_it_did_not_write(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(tiny_dataset), str(tmp_path / "mine")])
    assert (
        exit_info.value.code == 2
        and "is not empty and is not a LeRobot v3 dataset" in capsys.readouterr().err
    )
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    main(["export", str(tiny_dataset), str(tmp_path / "lerobot")])
    with pytest.raises(SystemExit):
        main(["export", str(tiny_dataset), str(tmp_path / "lerobot")])
    assert "pass overwrite=True" in capsys.readouterr().err
    main(["export", str(tiny_dataset), str(tmp_path / "lerobot"), "--overwrite"])
    main(["import", str(tmp_path / "lerobot"), str(tmp_path / "back")])
    assert "wrote" in capsys.readouterr().out and len(EpisodeDataset(tmp_path / "back")) == 6
