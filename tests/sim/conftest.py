"""A small real expert dataset (Meta-World rollouts, real mp4s) shared by the simulator tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from sim_fixtures import small_config

from vid2robot.sim.expert_data import generate_expert_dataset


@pytest.fixture(scope="session")
def expert_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("expert") / "ds"
    return root, generate_expert_dataset(small_config(root))
