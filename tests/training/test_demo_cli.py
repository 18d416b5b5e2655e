"""vid2robot-demo with the policy the package ships: prompt video recorded, robot acting, results written."""

from __future__ import annotations

import json
from pathlib import Path

from hydra import compose, initialize_config_module

from vid2robot.cli.demo import SHIPPED_POLICY, demo
from vid2robot.policy import load_policy


def test_shipped_policy_loads_and_is_small() -> None:
    policy = load_policy(Path(str(SHIPPED_POLICY)))
    assert type(policy).__name__ == "Vid2RobotPolicy"
    size = sum(p.stat().st_size for p in Path(str(SHIPPED_POLICY)).iterdir())
    assert size < 20 * 2**20


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    with initialize_config_module("vid2robot.conf", version_base="1.3"):
        cfg = compose(
            "demo",
            overrides=[
                "tasks=[reach-v3]",
                "prompt_episodes_per_task=1",
                "episodes_per_task=1",
                "max_steps=15",
                "workers=0",
                f"out_dir={tmp_path}",
            ],
        )
    summary = demo(cfg)
    assert set(summary["tasks"]) == {"reach-v3"}
    assert json.loads((tmp_path / "results.json").read_text())["episodes_per_task"] == 1
    assert (tmp_path / "rollout_reach-v3.mp4").stat().st_size > 0
