"""LeRobot dataset v3.0 layout: paths, standard features, tasks and statistics, shared by import and export.

```
meta/info.json                                     codebase_version "v3.0", fps, features, path templates
meta/stats.json                                    per feature: min max mean std count q01 q10 q50 q90 q99
meta/tasks.parquet                                 task_index, the task string as pandas' index ("task")
meta/episodes/chunk-000/file-000.parquet           one row per episode: length, tasks, where its rows and
                                                   frames are (data/..., videos/<key>/..., from_timestamp)
data/chunk-000/file-000.parquet                    many episodes' rows per file
videos/<key>/chunk-000/file-000.mp4                many episodes' frames per file, one after the other
```
A file's ``(chunk, file)`` index is ``divmod(n, chunks_size)`` for the ``n``-th file. Images are features
named ``observation.images.<camera>`` (``dtype`` ``video``, or ``image`` when stored in the data parquet as
``{bytes, path}``); vectors are ``action`` and ``observation.state``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
TASKS_PATH = "meta/tasks.parquet"
ACTION_KEY, STATE_KEY, IMAGE_PREFIX = "action", "observation.state", "observation.images."
# Every LeRobot dataset has these per-frame columns.
DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
# Per-episode columns of meta/episodes that carry what LeRobot has no field for (LeRobot ignores them).
VID2ROBOT_COLUMNS = (
    "vid2robot/task",
    "vid2robot/task_index",
    "vid2robot/success",
    "vid2robot/seed",
    "vid2robot/split",
)


def file_index(n: int, chunks_size: int = CHUNKS_SIZE) -> dict[str, int]:
    """The ``chunk_index`` and ``file_index`` of the ``n``-th file of a kind."""
    chunk, file = divmod(n, chunks_size)
    return {"chunk_index": chunk, "file_index": file}


def read_tasks(root: Path) -> dict[int, str]:
    """``task_index -> task`` from meta/tasks.parquet (the task string is pandas' index column there)."""
    table = pq.read_table(root / TASKS_PATH)
    column = next((c for c in ("task", "__index_level_0__") if c in table.column_names), None)
    if column is None or "task_index" not in table.column_names:
        raise ValueError(
            f"{root / TASKS_PATH}: expected columns task_index and task, got {table.column_names}"
        )
    return dict(zip(table.column("task_index").to_pylist(), table.column(column).to_pylist(), strict=True))


def write_tasks(root: Path, tasks: list[str]) -> None:
    """meta/tasks.parquet as LeRobot writes it with pandas: ``task_index`` and the task strings as the index
    named ``task`` (the pandas metadata makes ``pandas.read_parquet`` restore that index, which LeRobot reads)."""
    table = pa.table(
        {"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())}
    )
    pandas = {
        "index_columns": ["task"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }  # fmt: skip
    (root / TASKS_PATH).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata({"pandas": json.dumps(pandas)}), root / TASKS_PATH)


def vector_stats(values: np.ndarray) -> dict[str, list]:
    """LeRobot's statistics of ``[N, D]`` values (or ``[N]`` scalars, kept as one-element lists)."""
    values = np.asarray(values, np.float64).reshape(len(values), -1)
    quantiles = np.quantile(values, list(QUANTILES.values()), axis=0)
    stats = {
        "min": values.min(0).tolist(),
        "max": values.max(0).tolist(),
        "mean": values.mean(0).tolist(),
        "std": values.std(0).tolist(),
        "count": [len(values)],
    }
    return stats | {key: quantiles[i].tolist() for i, key in enumerate(QUANTILES)}


def image_stats(frames: np.ndarray) -> dict[str, list]:
    """Per-channel statistics of sampled ``uint8 [N, H, W, 3]`` frames in [0, 1], shaped ``[3, 1, 1]``; frames
    of 300 px or more are subsampled to about 150 px first, as LeRobot does."""
    stride = max(frames.shape[1:3]) // 150 if max(frames.shape[1:3]) >= 300 else 1
    pixels = np.asarray(frames[:, ::stride, ::stride], np.float64).reshape(-1, frames.shape[-1]) / 255.0
    stats = vector_stats(pixels)
    return {key: [[[v]] for v in value] for key, value in stats.items() if key != "count"} | {
        "count": [len(frames)]
    }


def aggregate_stats(parts: list[dict[str, list]]) -> dict[str, list]:
    """Statistics over several parts from theirs: exact min, max, mean and std; quantiles as the
    count-weighted mean of the parts' quantiles (LeRobot's aggregation)."""
    counts = np.array([part["count"][0] for part in parts], np.float64)
    weights = (counts / counts.sum()).reshape(-1, *[1] * np.asarray(parts[0]["mean"]).ndim)
    means = np.array([part["mean"] for part in parts], np.float64)
    mean = (weights * means).sum(0)
    variance = (
        weights * (np.array([part["std"] for part in parts], np.float64) ** 2 + (means - mean) ** 2)
    ).sum(0)
    stats = {
        "min": np.min([part["min"] for part in parts], 0).tolist(),
        "max": np.max([part["max"] for part in parts], 0).tolist(),
        "mean": mean.tolist(),
        "std": np.sqrt(variance).tolist(),
        "count": [int(counts.sum())],
    }
    return stats | {
        key: (weights * np.array([part[key] for part in parts])).sum(0).tolist() for key in QUANTILES
    }


def sample_indices(length: int, most: int = 100) -> list[int]:
    """Evenly spaced frame indices for image statistics (LeRobot samples about 100 per episode)."""
    return np.unique(np.round(np.linspace(0, length - 1, min(length, most))).astype(int)).tolist()
