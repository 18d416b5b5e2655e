"""The on-disk episode format (a LeRobot-v3-like layout) and its writer; see docs/episode_format.md.

```
root/meta/info.json                                   format version, fps, cameras, image size, dims, names
root/meta/episodes.parquet                            one row per episode (task, length, success, seed, split)
root/meta/stats.json                                  per-dimension action and state statistics (LeRobot names)
root/data/chunk-000/episode_000000.parquet            one row per step: frame_index, timestamp, action, state
root/videos/<camera>/chunk-000/episode_000000.mp4     H.264, one frame per step
```
Step ``i`` pairs the frames observed at ``i``, the state at ``i`` and the action taken after observing them.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from detection.safe_files import atomic_write_json, replace_directory
from vid2robot.data.stats import write_dataset_stats
from vid2robot.data.video_io import write_video

FORMAT_VERSION = "vid2robot-episodes/1.0"
CHUNK_SIZE = 1000
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """Dataset-wide constants stored in ``meta/info.json``."""

    fps: int
    cameras: tuple[str, ...]
    image_height: int
    image_width: int
    action_names: tuple[str, ...]
    state_names: tuple[str, ...]
    robot: str = ""
    crf: int = 18
    pix_fmt: str = "yuv420p"
    gop: int = 30
    format_version: str = FORMAT_VERSION
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameras", tuple(self.cameras))
        object.__setattr__(self, "action_names", tuple(self.action_names))
        object.__setattr__(self, "state_names", tuple(self.state_names))
        if self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"cameras must be a non-empty list of distinct names, got {self.cameras}")
        for cam in self.cameras:
            if not cam or "/" in cam or cam.startswith("."):
                raise ValueError(f"camera name {cam!r} is not usable as a folder name")
        if self.image_height <= 0 or self.image_width <= 0:
            raise ValueError(f"image size must be positive, got {self.image_height}x{self.image_width}")
        if not self.action_names:
            raise ValueError("action_names must name at least one action dimension")

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    @property
    def state_dim(self) -> int:
        return len(self.state_names)

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data.update(action_dim=self.action_dim, state_dim=self.state_dim)
        return data

    @classmethod
    def from_json(cls, data: Mapping, source: str = "info.json") -> DatasetInfo:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{source}: format_version {version!r} is not supported (expected {FORMAT_VERSION!r})"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        missing = {"fps", "cameras", "image_height", "image_width", "action_names", "state_names"} - set(data)
        if missing:
            raise ValueError(f"{source}: missing keys {sorted(missing)}")
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class EpisodeRecord:
    """One row of ``meta/episodes.parquet``."""

    episode_index: int
    task: str
    task_index: int
    task_text: str
    length: int
    success: bool
    seed: int
    split: str


EPISODES_SCHEMA = pa.schema(
    [
        ("episode_index", pa.int64()),
        ("task", pa.string()),
        ("task_index", pa.int64()),
        ("task_text", pa.string()),
        ("length", pa.int64()),
        ("success", pa.bool_()),
        ("seed", pa.int64()),
        ("split", pa.string()),
    ]
)


def episode_data_path(root: Path, episode_index: int) -> Path:
    return root / "data" / f"chunk-{episode_index // CHUNK_SIZE:03d}" / f"episode_{episode_index:06d}.parquet"


def episode_video_path(root: Path, camera: str, episode_index: int) -> Path:
    chunk = f"chunk-{episode_index // CHUNK_SIZE:03d}"
    return root / "videos" / camera / chunk / f"episode_{episode_index:06d}.mp4"


def _frames_schema(info: DatasetInfo) -> pa.Schema:
    return pa.schema(
        [
            ("episode_index", pa.int64()),
            ("frame_index", pa.int64()),
            ("timestamp", pa.float32()),
            ("action", pa.list_(pa.float32(), info.action_dim)),
            # pyarrow cannot read back a fixed-size list of size 0, so a dataset without state stores empty lists
            ("state", pa.list_(pa.float32(), info.state_dim) if info.state_dim else pa.list_(pa.float32())),
        ]
    )


def _check_episode(
    info: DatasetInfo, frames: Mapping[str, np.ndarray], actions: np.ndarray, states: np.ndarray, split: str
) -> int:
    """Validate one episode's arrays against ``info`` and return its length."""
    if set(frames) != set(info.cameras):
        raise ValueError(f"frames must have exactly the cameras {list(info.cameras)}, got {sorted(frames)}")
    actions, states = np.asarray(actions), np.asarray(states)
    if actions.ndim != 2 or actions.shape[1] != info.action_dim or len(actions) == 0:
        raise ValueError(f"actions must be [T>0, {info.action_dim}], got shape {tuple(actions.shape)}")
    length = len(actions)
    if states.shape != (length, info.state_dim):
        raise ValueError(f"states must be [{length}, {info.state_dim}], got shape {tuple(states.shape)}")
    for name, arr in (("actions", actions), ("states", states)):
        if not np.issubdtype(arr.dtype, np.floating) or not np.isfinite(arr).all():
            raise ValueError(f"{name} must be finite floats, got dtype {arr.dtype}")
    expected = (length, info.image_height, info.image_width, 3)
    for cam, video in frames.items():
        video = np.asarray(video)
        if video.dtype != np.uint8 or video.shape != expected:
            raise ValueError(
                f"frames[{cam!r}] must be uint8 {list(expected)} (RGB, one frame per action), "
                f"got {video.dtype} {list(video.shape)}"
            )
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return length


def write_episode(
    root: str | Path,
    info: DatasetInfo,
    episode_index: int,
    frames: Mapping[str, np.ndarray],
    actions: np.ndarray,
    states: np.ndarray,
    task: str,
    task_index: int,
    task_text: str,
    success: bool,
    seed: int,
    split: str = "train",
) -> EpisodeRecord:
    """Write one episode's parquet and mp4 files (safe to call from worker processes) and return its record.

    The dataset becomes readable once ``write_meta`` (or ``EpisodeWriter.close``) lists the records.
    """
    root = Path(root)
    if episode_index < 0:
        raise ValueError(f"episode_index must be >= 0, got {episode_index}")
    length = _check_episode(info, frames, actions, states, split)
    table = pa.table(
        {
            "episode_index": np.full(length, episode_index, np.int64),
            "frame_index": np.arange(length, dtype=np.int64),
            "timestamp": (np.arange(length) / info.fps).astype(np.float32),
            "action": list(np.asarray(actions, np.float32)),
            "state": list(np.asarray(states, np.float32)),
        },
        schema=_frames_schema(info),
    )
    data_path = episode_data_path(root, episode_index)
    data_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, data_path)
    for cam in info.cameras:
        write_video(
            episode_video_path(root, cam, episode_index),
            frames[cam],
            info.fps,
            info.crf,
            info.pix_fmt,
            info.gop,
        )
    return EpisodeRecord(
        episode_index, task, int(task_index), task_text, length, bool(success), int(seed), split
    )


def write_meta(root: str | Path, info: DatasetInfo, records: Iterable[EpisodeRecord]) -> None:
    """Write ``meta/episodes.parquet`` (sorted by episode index) and ``meta/info.json``."""
    root = Path(root)
    records = sorted(records, key=lambda r: r.episode_index)
    indices = [r.episode_index for r in records]
    if len(set(indices)) != len(indices):
        raise ValueError(f"duplicate episode indices in {indices}")
    rows = {f.name: [getattr(r, f.name) for r in records] for f in dataclasses.fields(EpisodeRecord)}
    (root / "meta").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows, schema=EPISODES_SCHEMA), root / "meta" / "episodes.parquet")
    summary = info.to_json() | {
        "total_episodes": len(records),
        "total_frames": int(sum(r.length for r in records)),
        "tasks": sorted({(r.task_index, r.task, r.task_text) for r in records}),
        "chunk_size": CHUNK_SIZE,
    }
    atomic_write_json(root / "meta" / "info.json", summary)


def is_episode_dataset(root: Path) -> bool:
    """Whether ``root`` holds a dataset of this format (its ``meta/info.json`` names the format version)."""
    try:
        return json.loads((root / "meta" / "info.json").read_text()).get("format_version") == FORMAT_VERSION
    except (OSError, ValueError, AttributeError):
        return False


def check_replaceable(root: Path, overwrite: bool) -> None:
    """Refuse, before any work, to write a dataset where it would replace anything but a dataset of ours."""
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root} is a file, not a dataset folder; choose another out_dir")
    if not root.exists() or not any(root.iterdir()):
        return
    if not is_episode_dataset(root):
        raise FileExistsError(
            f"{root} is not empty and is not a vid2robot episode dataset (no meta/info.json with format_version "
            f"{FORMAT_VERSION!r}); nothing there is replaced: choose another out_dir"
        )
    if not overwrite:
        raise FileExistsError(f"{root} already holds a dataset; pass overwrite=True to replace it")


class EpisodeWriter:
    """Context manager that writes episodes one by one and the metadata on a clean exit.

    ```python
    with EpisodeWriter(root, info) as writer:
        writer.add_episode(frames={"robot": video}, actions=a, states=s, task="reach-v3", ...)
    ```
    Episodes go to a hidden staging folder beside ``root``; ``close`` writes the metadata there and only then
    moves the whole dataset into place, so a dataset appears complete or not at all. ``overwrite`` replaces an
    existing dataset of this format (checked up front); any other non-empty folder is refused. On an
    exception the staging folder is removed and ``root`` is left as it was.
    """

    def __init__(self, root: str | Path, info: DatasetInfo, overwrite: bool = False) -> None:
        self.root, self.info = Path(root), info
        check_replaceable(self.root, overwrite)
        self.root.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{self.root.name}.partial-", dir=self.root.parent))
        self.records: list[EpisodeRecord] = []

    def meta_path(self, name: str) -> Path:
        """Where an extra metadata file goes (``meta/<name>``); it moves into place with the dataset."""
        (self.staging / "meta").mkdir(exist_ok=True)
        return self.staging / "meta" / name

    def add_episode(
        self,
        frames: Mapping[str, np.ndarray],
        actions: np.ndarray,
        states: np.ndarray,
        task: str,
        task_index: int,
        task_text: str = "",
        success: bool = True,
        seed: int = -1,
        split: str = "train",
    ) -> EpisodeRecord:
        record = write_episode(
            self.staging,
            self.info,
            episode_index=len(self.records),
            frames=frames,
            actions=actions,
            states=states,
            task=task,
            task_index=task_index,
            task_text=task_text or task,
            success=success,
            seed=seed,
            split=split,
        )
        self.records.append(record)
        return record

    def add_record(self, record: EpisodeRecord) -> None:
        """Register an episode written by ``write_episode`` elsewhere (e.g. in a worker process)."""
        self.records.append(record)

    def close(self) -> None:
        """Write the metadata and statistics, then move the finished dataset to ``root`` (replacing an old one)."""
        write_meta(self.staging, self.info, self.records)
        write_dataset_stats(self.staging)
        replace_directory(self.staging, self.root)

    def abort(self) -> None:
        """Drop everything written so far; ``root`` is untouched."""
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
