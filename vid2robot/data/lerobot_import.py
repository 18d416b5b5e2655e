"""Convert a LeRobot v3 dataset folder (layout in ``vid2robot.data.lerobot_layout``) into the episode format.

LeRobot v3 packs many episodes per data and video file and locates them through ``meta/episodes`` (row
ranges, video ``from_timestamp``); this module unpacks them into one parquet and one mp4 per episode and
camera. Cameras are the ``video`` features, and the ``image`` features whose frames are stored in the data
parquet (``use_videos=False``: PNG or JPEG bytes, or a path), named without ``observation.images.``.
The episode format holds one task per episode: an episode whose task changes midway is refused (skipped,
with a warning naming it and its tasks). What no field here carries (other features, such as rewards or
an environment state) is listed in one warning. ``meta/stats.json`` is read and checked against the
imported data (statistics are recomputed from it; a disagreement is a warning). The ``vid2robot/*``
columns that ``lerobot_export`` writes restore task ids, success, seed and split; otherwise episodes are
demonstrations: ``success=True``, ``seed=-1``, the given split, the task string as task id and text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from detection.safe_files import read_json_file
from vid2robot.data.episode_dataset import EpisodeDataset
from vid2robot.data.episode_format import DatasetInfo, EpisodeWriter
from vid2robot.data.lerobot_layout import (
    ACTION_KEY,
    DATA_PATH,
    DEFAULT_FEATURES,
    IMAGE_PREFIX,
    STATE_KEY,
    VID2ROBOT_COLUMNS,
    VIDEO_PATH,
    read_tasks,
)
from vid2robot.data.stats import read_dataset_stats
from vid2robot.data.video_io import read_frames

log = logging.getLogger(__name__)


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


def _decode_image(cell: Mapping | None, src: Path, where: str) -> np.ndarray:
    """One parquet image cell (``{"bytes", "path"}``, as Hugging Face datasets stores images) as RGB."""
    if not cell or not (cell.get("bytes") or cell.get("path")):
        raise ValueError(f"{where}: empty image cell (expected PNG/JPEG bytes or a path)")
    data = cell.get("bytes") or (src / cell["path"]).read_bytes()
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError(f"{where}: image bytes do not decode (PNG or JPEG expected)")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def _source_stats(src: Path, features: Mapping) -> dict[str, dict[str, np.ndarray]]:
    """min, max, mean and std of the actions and states in the source's meta/stats.json (checked against the
    features' sizes); empty when it has none."""
    path = src / "meta" / "stats.json"
    if not path.is_file():
        return {}
    source = read_json_file(path, "LeRobot statistics file")
    stats = {}
    for key in (ACTION_KEY, STATE_KEY):
        if key not in features or key not in source:
            continue
        dim = int(features[key]["shape"][0])
        stats[key] = {}
        for name in ("min", "max", "mean", "std"):
            values = np.asarray(source[key].get(name, []), np.float64).reshape(-1)
            if len(values) != dim:
                raise ValueError(
                    f"{path}: {key}.{name} has {len(values)} values but the feature has {dim}; fix or delete the "
                    "file (statistics are recomputed from the data anyway)"
                )
            stats[key][name] = values
    return stats


def _compare_stats(source: Mapping, dst: Path, src: Path) -> None:
    """Warn where the source's statistics disagree with those of the imported data."""
    imported = read_dataset_stats(dst) or {}
    for key, stats in source.items():
        for name, values in stats.items():
            ours = np.asarray(imported[key][name], np.float64)
            if not np.allclose(values, ours, rtol=1e-4, atol=1e-5):
                log.warning(
                    "%s/meta/stats.json: %s.%s is %s but the imported data's is %s (statistics of other data?); "
                    "%s/meta/stats.json is computed from the data",
                    src, key, name, values.round(6).tolist(), ours.round(6).tolist(), dst,
                )  # fmt: skip


def import_lerobot_v3(
    src: str | Path,
    dst: str | Path,
    split: str = "train",
    camera_names: Mapping[str, str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> EpisodeDataset:
    """Convert ``src`` (LeRobot v3) into ``dst``; cameras are the video / image keys without
    ``observation.images.`` unless ``camera_names`` maps keys to names. Returns the new dataset."""
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
    image_keys = [key for key, feature in features.items() if feature.get("dtype") == "image"]
    if not video_keys + image_keys or ACTION_KEY not in features:
        raise ValueError(
            f"{src}: needs at least one video or image feature and an 'action' feature, has {sorted(features)}"
        )
    shapes = {tuple(features[key]["shape"][:2]) for key in video_keys + image_keys}
    if len(shapes) != 1:
        raise ValueError(
            f"{src}: cameras have different frame sizes {sorted(shapes)}; this format needs one size"
        )
    height, width = shapes.pop()
    cameras = {
        key: (camera_names or {}).get(key, key.removeprefix(IMAGE_PREFIX)) for key in video_keys + image_keys
    }
    carried = {*cameras, ACTION_KEY, STATE_KEY, *DEFAULT_FEATURES}
    dropped = sorted(set(features) - carried)
    if dropped:
        log.warning(
            "%s: features not carried over (the episode format has no field for them): %s", src, dropped
        )
    source_stats = _source_stats(src, features)
    fps = info["fps"]
    target = DatasetInfo(
        fps=round(fps),
        cameras=tuple(cameras.values()),
        image_height=int(height),
        image_width=int(width),
        action_names=_names(features[ACTION_KEY], "action"),
        state_names=_names(features[STATE_KEY], "state") if STATE_KEY in features else (),
        robot=str(info.get("robot_type") or ""),
        extra={"imported_from": str(src), "lerobot_codebase_version": version},
    )
    tasks = read_tasks(src)
    episode_files = sorted((src / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not episode_files:
        raise FileNotFoundError(f"{src}/meta/episodes/chunk-*/file-*.parquet: no episode metadata found")
    episodes = sorted(
        (row for path in episode_files for row in pq.read_table(path).to_pylist()),
        key=lambda r: r["episode_index"],
    )
    data_template = info.get("data_path", DATA_PATH)
    video_template = info.get("video_path") or VIDEO_PATH
    data_files: dict[Path, pa.Table] = {}
    refused: list[str] = []
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
            task_indices = pc.unique(rows["task_index"]).to_pylist()
            if len(task_indices) != 1:
                refused.append(f"episode {index} ({[tasks.get(t, t) for t in task_indices]})")
                continue
            frames = {}
            for key in video_keys:
                video = src / video_template.format(
                    video_key=key,
                    chunk_index=episode[f"videos/{key}/chunk_index"],
                    file_index=episode[f"videos/{key}/file_index"],
                )
                start = round(float(episode[f"videos/{key}/from_timestamp"]) * fps)
                frames[cameras[key]] = read_frames(video, range(start, start + length))
            for key in image_keys:
                cells = rows[key].to_pylist()
                frames[cameras[key]] = np.stack(
                    [
                        _decode_image(cell, src, f"{path}: {key} of episode {index}, frame {i}")
                        for i, cell in enumerate(cells)
                    ]
                )
            task = tasks[task_indices[0]]
            states = (
                np.asarray(rows[STATE_KEY].to_pylist(), np.float32)
                if STATE_KEY in features
                else np.zeros((length, 0), np.float32)
            )
            ours = {
                column.removeprefix("vid2robot/"): episode[column]
                for column in VID2ROBOT_COLUMNS
                if column in episode
            }
            writer.add_episode(
                frames=frames,
                actions=np.asarray(rows[ACTION_KEY].to_pylist(), np.float32),
                states=states,
                task=ours.get("task", task),
                task_index=ours.get("task_index", task_indices[0]),
                task_text=task,
                success=ours.get("success", True),
                seed=ours.get("seed", -1),
                split=ours.get("split", split),
            )
        if refused:
            log.warning(
                "%s: %d episodes refused, their task changes midway (this format keeps one task per episode; "
                "split them at the task change to import them): %s",
                src, len(refused), "; ".join(refused),
            )  # fmt: skip
        if not writer.records:
            raise ValueError(f"{src}: no episode could be imported ({len(refused)} refused)")
    if not refused:  # with episodes left out the statistics differ anyway
        _compare_stats(source_stats, Path(dst), src)
    return EpisodeDataset(dst)
