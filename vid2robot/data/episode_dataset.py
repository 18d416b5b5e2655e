"""Lazy reader of the episode format: metadata up front, step data and video frames only when asked."""

from __future__ import annotations

import dataclasses
import json
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from vid2robot.data.episode_format import (
    SPLITS,
    DatasetInfo,
    EpisodeRecord,
    episode_data_path,
    episode_video_path,
)
from vid2robot.data.video_io import read_frames


class Episode:
    """One recorded episode; step arrays are read on first use, frames decoded per request."""

    def __init__(self, root: Path, info: DatasetInfo, record: EpisodeRecord) -> None:
        self.root, self.info, self.record = root, info, record

    @property
    def length(self) -> int:
        return self.record.length

    @cached_property
    def _table(self) -> dict[str, np.ndarray]:
        path = episode_data_path(self.root, self.record.episode_index)
        if not path.is_file():
            raise FileNotFoundError(f"step data {path} of episode {self.record.episode_index} is missing")
        table = pq.read_table(path)
        if table.num_rows != self.length:
            raise ValueError(f"{path}: has {table.num_rows} rows, meta/episodes.parquet says {self.length}")
        return {
            name: table.column(name).combine_chunks().flatten().to_numpy().reshape(self.length, -1)
            for name in ("action", "state")
        } | {"timestamp": table.column("timestamp").to_numpy()}

    @property
    def actions(self) -> np.ndarray:
        """``float32 [T, action_dim]``."""
        return self._table["action"]

    @property
    def states(self) -> np.ndarray:
        """``float32 [T, state_dim]``."""
        return self._table["state"]

    @property
    def timestamps(self) -> np.ndarray:
        """``float32 [T]`` seconds since the first step."""
        return self._table["timestamp"]

    def video_path(self, camera: str) -> Path:
        if camera not in self.info.cameras:
            raise KeyError(f"unknown camera {camera!r}; this dataset has {list(self.info.cameras)}")
        return episode_video_path(self.root, camera, self.record.episode_index)

    def frames(self, camera: str, indices: list[int] | None = None) -> np.ndarray:
        """``uint8 [k, H, W, 3]`` RGB frames of ``camera`` at ``indices`` (all frames when ``None``)."""
        frames = read_frames(self.video_path(camera), indices, expected_frames=self.length, gop=self.info.gop)
        expected = (self.info.image_height, self.info.image_width)
        if frames.shape[1:3] != expected:
            raise ValueError(
                f"{self.video_path(camera)}: frames are {frames.shape[1:3]}, info.json says {expected}"
            )
        return frames


class EpisodeDataset:
    """Random access to the episodes of one dataset root (see docs/episode_format.md)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        info_path = self.root / "meta" / "info.json"
        episodes_path = self.root / "meta" / "episodes.parquet"
        for path in (info_path, episodes_path):
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} is missing: {self.root} is not a complete vid2robot episode dataset "
                    "(write one with EpisodeWriter or `vid2robot-datagen`)"
                )
        with open(info_path) as f:
            self.info = DatasetInfo.from_json(json.load(f), source=str(info_path))
        names = [f.name for f in dataclasses.fields(EpisodeRecord)]
        table = pq.read_table(episodes_path)
        missing = set(names) - set(table.column_names)
        if missing:
            raise ValueError(f"{episodes_path}: missing columns {sorted(missing)}")
        columns = {n: table.column(n).to_pylist() for n in names}
        self.records = [
            EpisodeRecord(**dict(zip(names, row, strict=True))) for row in zip(*columns.values(), strict=True)
        ]
        self._by_index = {r.episode_index: r for r in self.records}
        self._episodes: dict[int, Episode] = {}

    def __len__(self) -> int:
        return len(self.records)

    def episode(self, episode_index: int) -> Episode:
        """The episode with this index (cached, so its step arrays are read once per process)."""
        if episode_index not in self._by_index:
            raise KeyError(f"episode {episode_index} is not in {self.root} ({len(self)} episodes)")
        if episode_index not in self._episodes:
            self._episodes[episode_index] = Episode(self.root, self.info, self._by_index[episode_index])
        return self._episodes[episode_index]

    @property
    def tasks(self) -> list[str]:
        """Task names ordered by task_index."""
        return [t for _, t in sorted({(r.task_index, r.task) for r in self.records})]

    def select(
        self, split: str | None = None, task: str | None = None, success: bool | None = None
    ) -> list[int]:
        """Episode indices filtered by split, task name and success."""
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        if task is not None and task not in self.tasks:
            raise KeyError(f"unknown task {task!r}; {self.root} has {self.tasks}")
        return [
            r.episode_index
            for r in self.records
            if (split is None or r.split == split)
            and (task is None or r.task == task)
            and (success is None or r.success == success)
        ]
