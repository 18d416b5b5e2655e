"""EpisodeAppender: a dataset grows one committed episode at a time and stays readable through kills."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from episode_fixtures import assert_levels, flat_video, robot_level

from vid2robot.data.episode_appender import DatasetLockedError, EpisodeAppender
from vid2robot.data.episode_dataset import EpisodeDataset
from vid2robot.data.episode_format import DatasetInfo

INFO = DatasetInfo(
    fps=10, cameras=("robot",), image_height=32, image_width=32, action_names=("a", "b"), state_names=("s",)
)


def append(appender: EpisodeAppender, length: int, task: str = "pick", offset: float = 0.0, **kwargs) -> None:
    steps = np.arange(length, dtype=np.float32)
    appender.append(
        INFO,
        frames={"robot": flat_video([robot_level(t % 27) for t in range(length)])},
        actions=np.stack([steps + offset, -steps], 1),
        states=steps[:, None] * 2,
        task=task,
        task_text=f"{task} the cube",
        **kwargs,
    )


def test_every_episode_is_committed_on_its_own_and_the_dataset_reopens(tmp_path: Path) -> None:
    root = tmp_path / "recorded"
    with EpisodeAppender(root) as appender:
        append(appender, 5, step_columns={"stamp_ns.action": np.arange(5, dtype=np.int64) * 7})
        assert len(EpisodeDataset(root)) == 1  # readable after the first episode
        append(appender, 7, task="stack", success=False, split="val")
    with EpisodeAppender(root) as appender:  # another session appends after the existing episodes
        append(appender, 3, offset=100.0)
    dataset = EpisodeDataset(root)
    assert [
        (r.episode_index, r.task, r.task_index, r.length, r.success, r.split) for r in dataset.records
    ] == [
        (0, "pick", 0, 5, True, "train"),
        (1, "stack", 1, 7, False, "val"),
        (2, "pick", 0, 3, True, "train"),
    ]
    assert dataset.episode(2).record.task_text == "pick the cube"
    assert_levels(dataset.episode(1).frames("robot"), [robot_level(t) for t in range(7)])
    np.testing.assert_array_equal(dataset.episode(2).actions[:, 0], [100, 101, 102])
    stats = json.loads((root / "meta" / "stats.json").read_text())
    assert stats["action"]["count"] == 15 and stats["action"]["max"][0] == 102
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 3 and info["total_frames"] == 15
    steps = pq.read_table(root / "data" / "chunk-000" / "episode_000000.parquet")
    assert steps.column("stamp_ns.action").to_pylist() == [0, 7, 14, 21, 28]
    assert not list(tmp_path.glob(".recorded.episode-*")), "staging folders are removed"


def test_a_mismatched_episode_or_bad_input_leaves_the_dataset_as_it_was(tmp_path: Path) -> None:
    root = tmp_path / "recorded"
    with EpisodeAppender(root) as appender:
        append(appender, 4)
        before = {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
        other = dataclasses.replace(INFO, cameras=("wrist",))
        with pytest.raises(ValueError, match=r"cameras is \('wrist',\) but the dataset's is \('robot',\)"):
            appender.append(other, {"wrist": flat_video([1])}, np.zeros((1, 2)), np.zeros((1, 1)), task="x")
        with pytest.raises(ValueError, match="actions must be"):
            appender.append(INFO, {"robot": flat_video([1, 2])}, np.zeros((2, 5)), np.zeros((2, 1)), task="x")
        assert {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()} == before
        assert len(appender.records) == 1
    assert not list(tmp_path.glob(".recorded.episode-*"))


def test_one_appender_per_dataset_and_foreign_folders_are_refused(tmp_path: Path) -> None:
    with (
        EpisodeAppender(tmp_path / "ds"),
        pytest.raises(DatasetLockedError, match="another process is appending"),
    ):
        EpisodeAppender(tmp_path / "ds")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not a vid2robot episode dataset"):
        EpisodeAppender(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


WRITER = """
import sys
import numpy as np
from pathlib import Path
sys.path.insert(0, {tests!r})
from episode_fixtures import flat_video
from test_episode_appender import INFO, append
from vid2robot.data.episode_appender import EpisodeAppender

with EpisodeAppender({root!r}) as appender:
    while True:
        append(appender, 60, offset=float(len(appender.records)))
        print("committed", len(appender.records), flush=True)
"""


@pytest.mark.slow
def test_a_killed_recorder_loses_at_most_the_episode_it_was_writing(tmp_path: Path) -> None:
    root = tmp_path / "recorded"
    script = WRITER.format(tests=str(Path(__file__).parent), root=str(root))
    for kill_after in (0.0, 0.15, 0.35):  # at various points of writing an episode
        process = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env={**os.environ}
        )
        committed = [process.stdout.readline() for _ in range(2)]
        assert all(line.startswith("committed") for line in committed), committed
        time.sleep(kill_after)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        dataset = EpisodeDataset(root)  # always readable, every listed episode complete
        assert len(dataset) >= 2
        for record in dataset.records:
            episode = dataset.episode(record.episode_index)
            assert len(episode.frames("robot")) == 60
            np.testing.assert_array_equal(episode.actions[:, 0], np.arange(60) + record.episode_index)
        stats = json.loads((root / "meta" / "stats.json").read_text())
        # killed between the renames of a commit: the statistics already cover the episode not yet listed
        assert stats["action"]["count"] in (60 * len(dataset), 60 * (len(dataset) + 1))
        EpisodeAppender(root).close()  # the next session rewrites such statistics
        stats = json.loads((root / "meta" / "stats.json").read_text())
        assert stats["action"]["count"] == 60 * len(dataset)


def test_a_dataset_without_state_writes_and_reads(tmp_path: Path) -> None:
    stateless = dataclasses.replace(INFO, state_names=())
    with EpisodeAppender(tmp_path / "ds") as appender:
        for length in (3, 4):
            appender.append(
                stateless,
                {"robot": flat_video([9] * length)},
                np.ones((length, 2)),
                np.zeros((length, 0)),
                "t",
            )
    dataset = EpisodeDataset(tmp_path / "ds")
    assert dataset.episode(1).states.shape == (4, 0) and dataset.episode(1).actions.shape == (4, 2)
    stats = json.loads((tmp_path / "ds" / "meta" / "stats.json").read_text())
    assert stats["observation.state"]["count"] == 7 and stats["observation.state"]["min"] == []
