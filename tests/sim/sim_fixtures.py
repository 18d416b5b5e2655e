"""Helpers of the simulator tests: the small expert-dataset configuration."""

from __future__ import annotations

from pathlib import Path

from vid2robot.sim.expert_data import DatagenConfig

SIM_TASKS = ["reach-v3", "button-press-topdown-v3"]


def small_config(out_dir: Path, **overrides: object) -> DatagenConfig:
    options = dict(
        out_dir=str(out_dir),
        tasks=SIM_TASKS,
        episodes_per_task=3,
        val_episodes_per_task=1,
        image_size=32,
        workers=0,
        stop_after_success=2,
        progress=False,
    )
    return DatagenConfig(**(options | overrides))
