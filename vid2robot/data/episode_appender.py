"""Add episodes to a dataset in place, one at a time, each durable on its own (for recorders that run long).

``EpisodeWriter`` stages a whole dataset and moves it into place on close: right for a generator that
finishes, wrong for a recorder, where a crash after an hour would lose every episode. ``EpisodeAppender``
commits each episode as it comes:

1. its parquet and mp4 files are written into a hidden staging folder beside the dataset
   (``.<name>.episode-*``) and fsynced;
2. they are renamed into the dataset (one atomic rename per file, same filesystem). Files of an index that
   ``meta/episodes.parquet`` does not list are invisible to readers; the next episode replaces them;
3. ``meta/stats.json``, ``meta/info.json`` and, last, ``meta/episodes.parquet`` (the commit: the row that
   lists the episode) are replaced atomically, each fsynced before its rename. Statistics go first, so a
   reader never sees an episode listed that they do not cover; a kill between the renames leaves them
   covering one episode more than is listed (a superset, safe to normalise with), which the next appender
   to open the dataset rewrites.

The first episode creates the dataset: its staging folder holds a complete dataset and is renamed to the
target. So from the first episode on the folder is always a readable dataset, and a crash or kill at any
moment loses at most the episode being written. One appender per dataset at a time (an ``flock`` on
``.<name>.lock`` beside it); staging folders left by a killed appender are removed when the next one opens.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from detection.safe_files import atomic_write_json, replace_directory
from vid2robot.data.episode_dataset import EpisodeDataset
from vid2robot.data.episode_format import (
    DatasetInfo,
    EpisodeRecord,
    episode_data_path,
    is_episode_dataset,
    write_episode,
    write_meta,
)
from vid2robot.data.stats import STATS_FILE, episode_files_stats

log = logging.getLogger(__name__)

# The fields two recordings must share to be one dataset (the rest of info.json may differ, e.g. ``extra``).
SHARED_FIELDS = ("fps", "cameras", "image_height", "image_width", "action_names", "state_names")
STANDARD_COLUMNS = ("episode_index", "frame_index", "timestamp", "action", "state")


class DatasetLockedError(RuntimeError):
    """Another process is appending to the same dataset."""


def check_compatible(existing: DatasetInfo, new: DatasetInfo, root: Path) -> None:
    """Refuse an episode whose cameras, frame size, rate or vector names differ from the dataset's."""
    for name in SHARED_FIELDS:
        have, got = getattr(existing, name), getattr(new, name)
        if have != got:
            raise ValueError(
                f"{root}: this episode's {name} is {got!r} but the dataset's is {have!r}; record into another "
                "dataset, or set the recorder's parameters to match the dataset"
            )


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened for fsync
        fd = os.open(path, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _add_step_columns(path: Path, columns: Mapping[str, np.ndarray]) -> None:
    """Rewrite one staged step file with extra per-step columns (e.g. a recorder's message stamps)."""
    table = pq.read_table(path)
    for name, values in columns.items():
        if name in STANDARD_COLUMNS:
            raise ValueError(f"extra step column {name!r} would replace a standard column {STANDARD_COLUMNS}")
        values = np.asarray(values)
        if values.shape != (table.num_rows,):
            raise ValueError(f"extra step column {name!r} needs {table.num_rows} values, got {values.shape}")
        table = table.append_column(name, pa.array(values))
    pq.write_table(table, path)


class EpisodeAppender:
    """Appends episodes to ``root`` (created by the first one), committing each on its own; see the module doc.

    ```python
    with EpisodeAppender("data/recorded") as appender:
        appender.append(info, frames={"robot": video}, actions=a, states=s, task="pick", task_text="pick it up")
    ```
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise FileExistsError(f"{self.root} is a file, not a dataset folder; choose another folder")
        if self.root.is_dir() and any(self.root.iterdir()) and not is_episode_dataset(self.root):
            raise FileExistsError(
                f"{self.root} is not empty and is not a vid2robot episode dataset (no meta/info.json of this "
                "format); nothing there is touched: choose another folder"
            )
        self.root.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.root.parent / f".{self.root.name}.lock", "a")  # noqa: SIM115 (held until close)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise DatasetLockedError(
                f"another process is appending to {self.root} (it holds {self._lock.name}); stop it or record "
                "into another dataset"
            ) from None
        for stale in self.root.parent.glob(f".{self.root.name}.episode-*"):
            log.warning("removing %s, left by an interrupted recording (its episode was never listed)", stale)
            shutil.rmtree(stale, ignore_errors=True)
        self.info: DatasetInfo | None = None
        self.records: list[EpisodeRecord] = []
        if is_episode_dataset(self.root):
            dataset = EpisodeDataset(self.root)
            self.info, self.records = dataset.info, list(dataset.records)
            self._repair_meta()

    def _repair_meta(self) -> None:
        """Rewrite statistics and info that do not describe the listed episodes (an append killed mid-commit)."""
        frames = sum(r.length for r in self.records)
        info = json.loads((self.root / "meta" / "info.json").read_text())
        stats_path = self.root / "meta" / STATS_FILE
        counted = (
            json.loads(stats_path.read_text()).get("action", {}).get("count")
            if stats_path.is_file()
            else None
        )
        if counted == frames and info.get("total_episodes") == len(self.records):
            return
        log.warning(
            "%s: meta/ did not describe the %d listed episodes (an interrupted append, or no statistics yet): rewritten",
            self.root,
            len(self.records),
        )
        staging = Path(tempfile.mkdtemp(prefix=f".{self.root.name}.episode-", dir=self.root.parent))
        try:
            self._commit(staging, self.info, self.records)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def task_index(self, task: str) -> int:
        """The dataset's index of ``task``, or the next free one for a new task."""
        known = {r.task: r.task_index for r in self.records}
        return known.get(task, max(known.values(), default=-1) + 1)

    def append(
        self,
        info: DatasetInfo,
        frames: Mapping[str, np.ndarray],
        actions: np.ndarray,
        states: np.ndarray,
        task: str,
        task_text: str = "",
        success: bool = True,
        split: str = "train",
        seed: int = -1,
        step_columns: Mapping[str, np.ndarray] | None = None,
    ) -> EpisodeRecord:
        """Write one episode and commit it; on any error before the commit the dataset is as it was."""
        if self.info is not None:
            check_compatible(self.info, info, self.root)
            info = self.info
        staging = Path(tempfile.mkdtemp(prefix=f".{self.root.name}.episode-", dir=self.root.parent))
        try:
            record = write_episode(
                staging, info, len(self.records), frames, actions, states, task=task,
                task_index=self.task_index(task), task_text=task_text or task, success=success, seed=seed,
                split=split,
            )  # fmt: skip
            if step_columns:
                _add_step_columns(episode_data_path(staging, record.episode_index), step_columns)
            records = [*self.records, record]
            if self.info is None:
                self._create(staging, info, records)
            else:
                self._commit(staging, info, records)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.info, self.records = info, records
        return record

    def _write_meta(
        self, staging: Path, data_root: Path, info: DatasetInfo, records: list[EpisodeRecord]
    ) -> None:
        write_meta(staging, info, records)
        paths = [episode_data_path(data_root, r.episode_index) for r in records]
        atomic_write_json(staging / "meta" / STATS_FILE, episode_files_stats(paths))

    def _create(self, staging: Path, info: DatasetInfo, records: list[EpisodeRecord]) -> None:
        """The first episode: the staging folder is a complete dataset; rename it to ``root``."""
        self._write_meta(staging, staging, info, records)
        for path in sorted(staging.rglob("*"), reverse=True):  # files, then their folders
            _fsync(path)
        replace_directory(staging, self.root)  # root is absent or empty here
        _fsync(self.root.parent)

    def _commit(self, staging: Path, info: DatasetInfo, records: list[EpisodeRecord]) -> None:
        """Move the episode's files in, then replace the metadata, the episode list last."""
        staged = [p for p in sorted(staging.rglob("*")) if p.is_file()]
        folders = set()
        for path in staged:
            _fsync(path)
            target = self.root / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            folders.add(target.parent)
        for folder in folders:
            _fsync(folder)
        self._write_meta(staging, self.root, info, records)
        for name in (STATS_FILE, "info.json", "episodes.parquet"):
            _fsync(staging / "meta" / name)
            os.replace(staging / "meta" / name, self.root / "meta" / name)
        _fsync(self.root / "meta")

    def close(self) -> None:
        """Release the dataset's lock (every appended episode is already committed)."""
        self._lock.close()

    def __enter__(self) -> EpisodeAppender:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
