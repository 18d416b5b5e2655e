"""Export an episode dataset as a LeRobot v3.0 dataset (layout in ``vid2robot.data.lerobot_layout``).

Episodes are packed as LeRobot packs them: rows of many episodes per data parquet (a new file once
``data_file_mb`` is reached) and, per camera, frames of many episodes per mp4, concatenated by stream copy
as LeRobot's own ``concatenate_video_files`` does (no re-encoding: the exported frames are the stored
ones; a new file once ``video_file_mb`` is reached or an episode was encoded with other codec settings).
Cameras become ``observation.images.<camera>`` video features, the task text the LeRobot task; what
LeRobot has no field for (task id and index, success, seed, split) goes to ``vid2robot/*`` columns of
``meta/episodes``, which the importer reads back. Statistics cover actions, states, the frame columns and
per-channel image statistics from about 100 sampled frames per episode, globally and per episode.
Extra step columns (a recorder's ``stamp_ns.*``) are not exported; a warning names them.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from detection.safe_files import atomic_write_json, replace_directory
from vid2robot.data.episode_dataset import Episode, EpisodeDataset
from vid2robot.data.episode_format import episode_data_path
from vid2robot.data.lerobot_layout import (
    ACTION_KEY,
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_PATH,
    DEFAULT_FEATURES,
    EPISODES_PATH,
    IMAGE_PREFIX,
    STATE_KEY,
    VID2ROBOT_COLUMNS,
    VIDEO_PATH,
    aggregate_stats,
    file_index,
    image_stats,
    sample_indices,
    vector_stats,
    write_tasks,
)

log = logging.getLogger(__name__)
STEP_COLUMNS = {"episode_index", "frame_index", "timestamp", "action", "state"}
MB = 2**20


def is_lerobot_dataset(root: Path) -> bool:
    try:
        return str(
            json.loads((root / "meta" / "info.json").read_text()).get("codebase_version", "")
        ).startswith("v3")
    except (OSError, ValueError, AttributeError):
        return False


@dataclass
class _VideoFile:
    """One packed mp4 being written: episodes' packets copied in, one after the other."""

    container: av.container.OutputContainer
    stream: av.VideoStream
    extradata: bytes | None
    frames: int = 0
    bytes: int = 0


@dataclass
class _VideoPacker:
    """The packed mp4 files of one camera."""

    root: Path
    key: str
    fps: int
    limit_bytes: int
    files: int = 0
    current: _VideoFile | None = None

    def add(self, episode_mp4: Path, length: int) -> dict[str, float | int]:
        """Append one episode's video; returns its ``videos/<key>/...`` columns of meta/episodes."""
        with av.open(str(episode_mp4)) as source:
            stream = source.streams.video[0]
            extradata = stream.codec_context.extradata
            size = episode_mp4.stat().st_size
            current = self.current
            if (
                current is None
                or current.extradata != extradata
                or (current.bytes and current.bytes + size > self.limit_bytes)
            ):
                self.close()
                current = self.current = self._open(stream, extradata)
            shift = round(current.frames / self.fps / stream.time_base)
            for packet in source.demux(stream):
                if packet.dts is None:  # the demuxer's flush packet
                    continue
                packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
                packet.stream = current.stream
                current.container.mux(packet)
        start = current.frames
        current.frames += length
        current.bytes += size
        index = file_index(self.files - 1)
        return {
            f"videos/{self.key}/chunk_index": index["chunk_index"],
            f"videos/{self.key}/file_index": index["file_index"],
            f"videos/{self.key}/from_timestamp": start / self.fps,
            f"videos/{self.key}/to_timestamp": (start + length) / self.fps,
        }

    def _open(self, template: av.VideoStream, extradata: bytes | None) -> _VideoFile:
        path = self.root / VIDEO_PATH.format(video_key=self.key, **file_index(self.files))
        path.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(str(path), "w", format="mp4")
        self.files += 1
        return _VideoFile(container, container.add_stream_from_template(template), extradata)

    def close(self) -> None:
        if self.current is not None:
            self.current.container.close()
            self.current = None


@dataclass
class _DataPacker:
    """The packed data parquet files: episodes' rows, a new file once the size limit is reached."""

    root: Path
    limit_bytes: int
    files: int = 0
    tables: list[pa.Table] = field(default_factory=list)

    def add(self, table: pa.Table) -> dict[str, int]:
        if self.tables and sum(t.nbytes for t in self.tables) + table.nbytes > self.limit_bytes:
            self.flush()
        self.tables.append(table)
        index = file_index(self.files)
        return {"data/chunk_index": index["chunk_index"], "data/file_index": index["file_index"]}

    def flush(self) -> None:
        if self.tables:
            path = self.root / DATA_PATH.format(**file_index(self.files))
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.concat_tables(self.tables), path)
            self.files += 1
            self.tables = []


def _features(dataset: EpisodeDataset) -> dict[str, dict]:
    info = dataset.info
    features = {
        f"{IMAGE_PREFIX}{camera}": {
            "dtype": "video",
            "shape": [info.image_height, info.image_width, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": info.image_height, "video.width": info.image_width, "video.codec": "h264",
                "video.pix_fmt": info.pix_fmt, "video.is_depth_map": False, "video.fps": info.fps,
                "video.channels": 3, "has_audio": False,
            },
        }
        for camera in info.cameras
    }  # fmt: skip
    features[ACTION_KEY] = {"dtype": "float32", "shape": [info.action_dim], "names": list(info.action_names)}
    if info.state_dim:
        features[STATE_KEY] = {"dtype": "float32", "shape": [info.state_dim], "names": list(info.state_names)}
    return features | DEFAULT_FEATURES


def _step_table(
    episode: Episode, episode_index: int, first_index: int, task_index: int, with_state: bool
) -> pa.Table:
    length = episode.length
    columns = {ACTION_KEY: pa.array(list(episode.actions), pa.list_(pa.float32(), episode.info.action_dim))}
    if with_state:
        columns[STATE_KEY] = pa.array(list(episode.states), pa.list_(pa.float32(), episode.info.state_dim))
    columns |= {
        "timestamp": pa.array(episode.timestamps, pa.float32()),
        "frame_index": pa.array(np.arange(length), pa.int64()),
        "episode_index": pa.array(np.full(length, episode_index), pa.int64()),
        "index": pa.array(np.arange(first_index, first_index + length), pa.int64()),
        "task_index": pa.array(np.full(length, task_index), pa.int64()),
    }
    return pa.table(columns)


def _column_stats(table: pa.Table, with_state: bool) -> dict[str, dict]:
    stats = {}
    for key in (ACTION_KEY, *((STATE_KEY,) if with_state else ()), *DEFAULT_FEATURES):
        column = table.column(key).combine_chunks()
        values = (
            column.flatten().to_numpy().reshape(len(table), -1)
            if pa.types.is_fixed_size_list(column.type)
            else column.to_numpy()
        )
        stats[key] = vector_stats(values)
    return stats


def export_lerobot_v3(
    src: str | Path,
    dst: str | Path,
    overwrite: bool = False,
    data_file_mb: float = 100.0,
    video_file_mb: float = 200.0,
    progress: bool = True,
) -> Path:
    """Write ``src`` (an episode dataset) as a LeRobot v3.0 dataset at ``dst``; returns ``dst``.

    The dataset is built beside ``dst`` and moved into place at the end, so ``dst`` is complete or absent;
    ``overwrite`` replaces a LeRobot dataset there, and nothing else."""
    dataset, dst = EpisodeDataset(src), Path(dst)
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        if not is_lerobot_dataset(dst):
            raise FileExistsError(
                f"{dst} is not empty and is not a LeRobot v3 dataset; nothing there is replaced: choose another folder"
            )
        if not overwrite:
            raise FileExistsError(f"{dst} already holds a LeRobot dataset; pass overwrite=True to replace it")
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.partial-", dir=dst.parent))
    try:
        _write(dataset, staging, data_file_mb, video_file_mb, progress)
        replace_directory(staging, dst)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dst


def _episode_row(
    episode: Episode, index: int, table: pa.Table, first: int, stats: dict[str, dict], packers: dict
) -> dict:
    """One row of meta/episodes: where the episode's rows and frames are, its statistics, our fields."""
    record = episode.record
    row = {
        "episode_index": index, "tasks": [record.task_text], "length": record.length,
        **packers["data"].add(table), "dataset_from_index": first, "dataset_to_index": first + record.length,
    }  # fmt: skip
    for camera in episode.info.cameras:
        row |= packers[camera].add(episode.video_path(camera), record.length)
    row |= {"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
    row |= {f"stats/{key}/{name}": value for key, feature in stats.items() for name, value in feature.items()}
    values = (record.task, record.task_index, record.success, record.seed, record.split)
    return row | dict(zip(VID2ROBOT_COLUMNS, values, strict=True))


def _write(
    dataset: EpisodeDataset, root: Path, data_file_mb: float, video_file_mb: float, progress: bool
) -> None:
    info = dataset.info
    with_state = info.state_dim > 0
    tasks = sorted({(r.task_index, r.task_text) for r in dataset.records})
    task_strings = list(dict.fromkeys(text for _, text in tasks))  # LeRobot's task is the instruction text
    packers: dict = {"data": _DataPacker(root, int(data_file_mb * MB))}
    for camera in info.cameras:
        packers[camera] = _VideoPacker(root, f"{IMAGE_PREFIX}{camera}", info.fps, int(video_file_mb * MB))
    rows, tables, camera_stats = [], [], {camera: [] for camera in info.cameras}
    extra_columns: set[str] = set()
    try:
        records = tqdm(dataset.records, desc="export LeRobot v3", unit="ep", disable=not progress)
        for index, record in enumerate(records):  # LeRobot numbers episodes 0 .. N-1
            episode = dataset.episode(record.episode_index)
            step_file = episode_data_path(dataset.root, record.episode_index)
            extra_columns |= set(pq.read_schema(step_file).names) - STEP_COLUMNS
            first = rows[-1]["dataset_to_index"] if rows else 0
            table = _step_table(episode, index, first, task_strings.index(record.task_text), with_state)
            stats = _column_stats(table, with_state)
            for camera in info.cameras:
                sampled = episode.frames(camera, sample_indices(record.length))
                stats[f"{IMAGE_PREFIX}{camera}"] = image_stats(sampled)
                camera_stats[camera].append(stats[f"{IMAGE_PREFIX}{camera}"])
            rows.append(_episode_row(episode, index, table, first, stats, packers))
            tables.append(table)
        packers["data"].flush()
    finally:
        for camera in info.cameras:
            packers[camera].close()
    if extra_columns:
        log.warning(
            "%s: step columns %s are not exported (LeRobot features carry actions, states and frames)",
            dataset.root,
            sorted(extra_columns),
        )
    episodes_path = root / EPISODES_PATH.format(**file_index(0))
    episodes_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), episodes_path)
    write_tasks(root, task_strings)
    stats = _column_stats(pa.concat_tables(tables), with_state)
    for camera, parts in camera_stats.items():
        stats[f"{IMAGE_PREFIX}{camera}"] = aggregate_stats(parts)
    atomic_write_json(root / "meta" / "stats.json", stats)
    atomic_write_json(
        root / "meta" / "info.json",
        {
            "codebase_version": CODEBASE_VERSION, "robot_type": info.robot or None,
            "total_episodes": len(dataset), "total_frames": sum(r.length for r in dataset.records),
            "total_tasks": len(task_strings),
            "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": math.ceil(data_file_mb),
            "video_files_size_in_mb": math.ceil(video_file_mb),
            "fps": info.fps, "splits": {"train": f"0:{len(dataset)}"}, "data_path": DATA_PATH,
            "video_path": VIDEO_PATH, "features": _features(dataset),
        },
    )  # fmt: skip
