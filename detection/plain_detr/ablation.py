"""Collect the BoxRPB ablation: ``python -m detection.plain_detr.ablation RUN_DIR [RUN_DIR ...]``.

Each ``RUN_DIR`` is a ``vid2robot-train task=detection`` run; its ``config.yaml`` gives the arm (``rpe_type``) and
seed, its last ``csv/coco_metrics/step_*.json`` the COCO metrics. Prints a markdown table: one row per run, then
the mean per arm.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from omegaconf import OmegaConf

from detection.coco.evaluation import METRICS, format_table


def load_run(run_dir: Path) -> tuple[str, int, int, dict[str, float]]:
    """``(rpe_type, seed, steps, metrics)`` of one finished run."""
    cfg = OmegaConf.load(run_dir / "config.yaml")
    results = sorted(run_dir.glob("csv/coco_metrics/step_*.json"))
    if not results:
        raise ValueError(f"{run_dir} has no csv/coco_metrics/step_*.json: did the run validate?")
    steps = int(results[-1].stem.split("_")[1])
    return str(cfg.module.model.rpe_type), int(cfg.seed), steps, json.loads(results[-1].read_text())


def ablation_table(run_dirs: list[Path]) -> str:
    rows: dict[str, dict[str, float]] = {}
    per_arm: dict[str, list[dict[str, float]]] = defaultdict(list)
    for run_dir in run_dirs:
        arm, seed, steps, metrics = load_run(run_dir)
        rows[f"{arm}, seed {seed}, {steps} steps"] = metrics
        per_arm[arm].append(metrics)
    for arm, results in per_arm.items():
        rows[f"**{arm} (mean of {len(results)})**"] = {
            m: sum(r[m] for r in results) / len(results) for m in METRICS
        }
    return format_table(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    print(ablation_table(parser.parse_args(argv).runs))


if __name__ == "__main__":
    main()
