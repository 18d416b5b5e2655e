"""Convert a LeRobot v3 dataset folder (meta/info.json + multi-episode parquet + mp4) into the episode format.

LeRobot v3 packs many episodes per data and video file and locates them through
``meta/episodes/chunk-*/file-*.parquet`` (row ranges, video ``from_timestamp``); this module unpacks them
into one parquet and one mp4 per episode and camera. LeRobot recordings are demonstrations, so episodes are
imported with ``success=True`` and ``seed=-1`` (no simulator layout).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from vid2robot.data.episode_dataset import EpisodeDataset
from vid2robot.data.episode_format import DatasetInfo, EpisodeWriter
from vid2robot.data.video_io import read_frames

DEFAULT_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEFAULT_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
STATE_KEY = "observation.state"


def _names(feature: Mapping, prefix: str) -> tuple[str, ...]:
    """Entry names of a vector feature; LeRobot stores a list, a ``{"motors": [...]}`` dict or nothing."""
    size = int(feature["shape"][0])
    names = feature.get("names")
    if isinstance(names, Mapping):
        names = next(iter(names.values()), None)
    if not names or len(names) != size:
        names = [f"{prefix}_{i}" for i in range(size)]
    return tuple(str(n) for n in names)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: not a LeRobot dataset folder")
    with open(path) as f:
        return json.load(f)


def _task_strings(src: Path) -> dict[int, str]:
    """``task_index -> task`` from meta/tasks.parquet (the task string is pandas' index column there)."""
    table = pq.read_table(src / "meta" / "tasks.parquet")
    column = next((c for c in ("task", "__index_level_0__") if c in table.column_names), None)
    if column is None or "task_index" not in table.column_names:
        raise ValueError(
            f"{src}/meta/tasks.parquet: expected columns task_index and task, got {table.column_names}"
        )
    return dict(zip(table.column("task_index").to_pylist(), table.column(column).to_pylist(), strict=True))


def import_lerobot_v3(
    src: str | Path,
    dst: str | Path,
    split: str = "train",
    camera_names: Mapping[str, str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> EpisodeDataset:
    """Convert ``src`` (LeRobot v3) into ``dst``; cameras are the video keys without ``observation.images.``
    unless ``camera_names`` maps video keys to names. Returns the new dataset."""
    src = Path(src)
    info = _read_json(src / "meta" / "info.json")
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3"):
        raise ValueError(
            f"{src}/meta/info.json: codebase_version {version!r} is not supported; expected a LeRobot v3 dataset "
            "(convert v2 datasets with LeRobot's v2->v3 converter first)"
        )
    features = info["features"]
    video_keys = [key for key, feature in features.items() if feature.get("dtype") == "video"]
    if not video_keys or "action" not in features:
        raise ValueError(
            f"{src}: needs at least one video feature and an 'action' feature, has {sorted(features)}"
        )
    shapes = {tuple(features[key]["shape"][:2]) for key in video_keys}
    if len(shapes) != 1:
        raise ValueError(
            f"{src}: cameras have different frame sizes {sorted(shapes)}; this format needs one size"
        )
    height, width = shapes.pop()
    cameras = {
        key: (camera_names or {}).get(key, key.removeprefix("observation.images.")) for key in video_keys
    }
    fps = info["fps"]
    target = DatasetInfo(
        fps=round(fps),
        cameras=tuple(cameras.values()),
        image_height=int(height),
        image_width=int(width),
        action_names=_names(features["action"], "action"),
        state_names=_names(features[STATE_KEY], "state") if STATE_KEY in features else (),
        robot=str(info.get("robot_type") or ""),
        extra={"imported_from": str(src), "lerobot_codebase_version": version},
    )
    tasks = _task_strings(src)
    episode_files = sorted((src / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not episode_files:
        raise FileNotFoundError(f"{src}/meta/episodes/chunk-*/file-*.parquet: no episode metadata found")
    episodes = sorted(
        (row for path in episode_files for row in pq.read_table(path).to_pylist()),
        key=lambda r: r["episode_index"],
    )
    data_template = info.get("data_path", DEFAULT_DATA_PATH)
    video_template = info.get("video_path", DEFAULT_VIDEO_PATH)
    data_files: dict[Path, object] = {}
    with EpisodeWriter(dst, target, overwrite=overwrite) as writer:
        for episode in tqdm(episodes, desc="import LeRobot v3", unit="ep", disable=not progress):
            index, length = episode["episode_index"], episode["length"]
            path = src / data_template.format(
                chunk_index=episode["data/chunk_index"], file_index=episode["data/file_index"]
            )
            if path not in data_files:
                data_files[path] = pq.read_table(path)
            rows = (
                data_files[path]
                .filter(pc.equal(data_files[path]["episode_index"], index))
                .sort_by("frame_index")
            )
            if rows.num_rows != length:
                raise ValueError(
                    f"{path}: episode {index} has {rows.num_rows} rows, meta/episodes says {length}"
                )
            frames = {}
            for key, camera in cameras.items():
                video = src / video_template.format(
                    video_key=key,
                    chunk_index=episode[f"videos/{key}/chunk_index"],
                    file_index=episode[f"videos/{key}/file_index"],
                )
                start = round(float(episode[f"videos/{key}/from_timestamp"]) * fps)
                frames[camera] = read_frames(video, range(start, start + length))
            task = tasks[rows["task_index"][0].as_py()]
            states = (
                np.asarray(rows[STATE_KEY].to_pylist(), np.float32)
                if STATE_KEY in features
                else np.zeros((length, 0))
            )
            writer.add_episode(
                frames=frames,
                actions=np.asarray(rows["action"].to_pylist(), np.float32),
                states=states,
                task=task,
                task_index=rows["task_index"][0].as_py(),
                task_text=task,
                success=True,
                seed=-1,
                split=split,
            )
    return EpisodeDataset(dst)
