"""A small real expert dataset (Meta-World rollouts, real mp4s) shared by the simulator tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from vid2robot.sim.expert_data import DatagenConfig, generate_expert_dataset

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


@pytest.fixture(scope="session")
def expert_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("expert") / "ds"
    return root, generate_expert_dataset(small_config(root))
