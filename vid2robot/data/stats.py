"""Per-dimension statistics of a dataset's actions and states, in ``meta/stats.json`` (LeRobot's names).

``{"action": {"min", "max", "mean", "std", "q01", "q99", "count"}, "observation.state": {...}}``, each a list
with one value per dimension (``count`` one number per feature). Training maps actions into the action
tokenizer's range from these (``vid2robot.policy.action_normalization``); every dataset writer produces them.
``python -m vid2robot.data.stats DATASET`` (re)computes them for a dataset written without them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from detection.safe_files import atomic_write_json, read_json_file

STATS_FILE = "stats.json"
FEATURES = {"action": "action", "state": "observation.state"}  # parquet column -> LeRobot feature name


def feature_stats(values: np.ndarray) -> dict[str, list[float] | int]:
    """min, max, mean, std, 1st and 99th percentile per column of ``[N, D]``, and the row count."""
    values = np.asarray(values, np.float64)
    if values.ndim != 2:
        raise ValueError(f"stats need a [N, D] array, got shape {values.shape}")
    if len(values) == 0:
        empty = [0.0] * values.shape[1]
        return {
            "min": empty,
            "max": empty,
            "mean": empty,
            "std": empty,
            "q01": empty,
            "q99": empty,
            "count": 0,
        }
    quantiles = np.quantile(values, [0.01, 0.99], axis=0)
    return {
        "min": values.min(0).tolist(),
        "max": values.max(0).tolist(),
        "mean": values.mean(0).tolist(),
        "std": values.std(0).tolist(),
        "q01": quantiles[0].tolist(),
        "q99": quantiles[1].tolist(),
        "count": len(values),
    }


def episode_files_stats(paths: list[Path]) -> dict[str, dict]:
    """Statistics of the ``action`` and ``state`` columns over episode parquet files."""
    columns: dict[str, list[np.ndarray]] = {column: [] for column in FEATURES}
    for path in paths:
        table = pq.read_table(path, columns=list(FEATURES))
        for column in FEATURES:
            values = table.column(column).combine_chunks()
            columns[column].append(values.flatten().to_numpy().reshape(len(table), -1))
    return {
        FEATURES[column]: feature_stats(np.concatenate(parts) if parts else np.zeros((0, 0)))
        for column, parts in columns.items()
    }


def write_dataset_stats(root: str | Path, meta_dir: Path | None = None) -> dict[str, dict]:
    """Compute the statistics of every episode under ``root/data`` and write ``meta/stats.json`` atomically."""
    root = Path(root)
    stats = episode_files_stats(sorted((root / "data").glob("chunk-*/episode_*.parquet")))
    atomic_write_json((meta_dir or root / "meta") / STATS_FILE, stats)
    return stats


def read_dataset_stats(root: str | Path) -> dict[str, dict] | None:
    """``meta/stats.json`` of a dataset, or None for a dataset written before statistics were kept."""
    path = Path(root) / "meta" / STATS_FILE
    if not path.exists():
        return None
    stats = read_json_file(path, "dataset statistics file")
    for feature in FEATURES.values():
        if feature in stats and not {"min", "max", "q01", "q99"} <= set(stats[feature]):
            raise ValueError(f"{path}: {feature!r} needs min, max, q01 and q99 lists; recompute with {USAGE}")
    return stats


USAGE = "python -m vid2robot.data.stats DATASET"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="(Re)compute meta/stats.json of an episode dataset.")
    parser.add_argument("dataset")
    args = parser.parse_args(argv)
    root = Path(args.dataset)
    if not (root / "meta" / "info.json").is_file():
        raise SystemExit(f"{root} is not an episode dataset (no meta/info.json)")
    stats = write_dataset_stats(root)
    action = stats["action"]
    print(
        f"wrote {root / 'meta' / STATS_FILE}: {action['count']} steps, actions in {action['min']} .. {action['max']}"
    )


if __name__ == "__main__":
    main()
