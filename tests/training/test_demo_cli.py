"""vid2robot-demo with the policies the package ships: hand prompts recorded, robot acting, swap table written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from vid2robot.cli.demo import SHIPPED_NAMES, SHIPPED_POLICIES, demo
from vid2robot.policy import load_policy


def _config(tmp_path: Path, *overrides: str):
    with initialize_config_module("vid2robot.conf", version_base="1.3"):
        return compose(
            "demo",
            overrides=[
                "prompt_episodes_per_task=1",
                "episodes_per_task=1",
                "max_steps=15",
                "workers=0",
                f"out_dir={tmp_path}",
                *overrides,
            ],
        )


def test_shipped_policies_load_and_are_small() -> None:
    classes = {name: type(load_policy(Path(str(SHIPPED_POLICIES / name)))).__name__ for name in SHIPPED_NAMES}
    assert classes == {"vid2robot": "Vid2RobotPolicy", "bcz": "BCZPolicy"}
    size = sum(p.stat().st_size for p in Path(str(SHIPPED_POLICIES)).rglob("*") if p.is_file())
    assert size < 20 * 2**20


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    return out, demo(_config(out))


def test_demo_runs_end_to_end(demo_run: tuple[Path, dict]) -> None:
    tmp_path, summaries = demo_run
    pair = ["drawer-open-v3", "drawer-close-v3"]
    assert list(summaries) == list(SHIPPED_NAMES)
    for name, summary in summaries.items():
        assert list(summary["tasks"]) == pair
        saved = json.loads((tmp_path / name / "results.json").read_text())
        assert saved["episodes_per_task"] == 1 and saved["prompt_camera"] == "hand"
        swap = saved["prompt_swap"]["drawer-open-v3|drawer-close-v3"]
        assert set(swap["prompts"]) == set(pair)
        assert "Prompt swap" in (tmp_path / name / "results.md").read_text()
        for task in pair:
            assert (tmp_path / name / f"rollout_{task}.mp4").stat().st_size > 0
    prompts = json.loads((tmp_path / "prompts" / "meta" / "info.json").read_text())
    assert prompts["extra"]["hand"]["pool"] == "held_out" and prompts["cameras"] == ["robot", "hand"]


def test_a_bad_option_is_refused_before_the_previous_prompts_are_touched(
    demo_run: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The old demo deleted out_dir/prompts first and validated after: a typo lost the previous prompts."""
    tmp_path, _ = demo_run
    before = {p: p.read_bytes() for p in sorted((tmp_path / "prompts").rglob("*")) if p.is_file()}
    for bad, message in [
        ("tasks=[drawer-open-v3,drawr-close-v3]", "unknown Meta-World task 'drawr-close-v3'"),
        ("prompt_camera=wrist", "prompt_camera must be one of"),
        ("hand_pool=train", "hand_pool must be one of"),
        ("episodes_per_task=0", "episodes_per_task must be an integer >= 1"),
        ("checkpoint=/no/such/policy", "checkpoint=/no/such/policy: no such file"),
    ]:
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            demo(_config(tmp_path, bad))
        after = {p: p.read_bytes() for p in sorted((tmp_path / "prompts").rglob("*")) if p.is_file()}
        assert after == before, bad
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "prompts").mkdir()
    (elsewhere / "prompts" / "mine.txt").write_text("not a dataset")
    with pytest.raises(FileExistsError, match="not a vid2robot episode dataset"):
        demo(_config(elsewhere))
    assert (elsewhere / "prompts" / "mine.txt").read_text() == "not a dataset"
