"""vid2robot-eval offline mode on a checkpoint that vid2robot-train produced from a real (tiny) dataset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig
from test_train_cli import compose_policy_config

from vid2robot.cli.eval import evaluate
from vid2robot.cli.train import run


def compose_eval_config(checkpoint: Path, dataset: Path, out_dir: Path, *overrides: str) -> DictConfig:
    with initialize_config_module("vid2robot.conf", version_base="1.3"):
        return compose(
            "eval",
            overrides=[f"checkpoint={checkpoint}", f"data_root={dataset}", f"out_dir={out_dir}", *overrides],
        )


@pytest.fixture(scope="module")
def trained_checkpoint(training_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("trained")
    config = compose_policy_config(
        training_dataset, "trainer.max_steps=60", "trainer.limit_val_batches=0", "module.learning_rate=3e-3"
    )
    run(config, run_dir)
    return run_dir / "checkpoints" / "last.ckpt"


def test_offline_eval_writes_tables_and_attention_picture(
    trained_checkpoint: Path, training_dataset: Path, tmp_path: Path
) -> None:
    results = evaluate(compose_eval_config(trained_checkpoint, training_dataset, tmp_path), tmp_path)
    assert set(results["per_task"]) == {"reach-v3", "push-v3"}
    overall = results["overall"]
    assert overall["items"] == 2 * 2 * 6  # 2 tasks x 2 val episodes x 6 steps, horizon 1
    assert len(overall["bin_accuracy_per_dim"]) == 4 and 0.0 <= overall["bin_accuracy"] <= 1.0
    assert overall["retrieval_accuracy"] is not None
    # trained with the alignment losses on the robot's episode: retrieval embeds the episode too
    assert results["retrieval_robot_video"] == "robot episode (4 frames)"
    assert json.loads((tmp_path / "offline_results.json").read_text())["overall"] == overall
    table = (tmp_path / "offline_results.md").read_text()
    assert "| reach-v3 |" in table and "| **all** |" in table
    assert (tmp_path / "prompt_attention.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_offline_eval_tells_a_trained_policy_from_chance(
    trained_checkpoint: Path, training_dataset: Path, tmp_path: Path
) -> None:
    # Actions are constant per task, so a policy that learnt the task from the videos is near 100%,
    # while 16 bins give a chance level of about 6%.
    trained = evaluate(
        compose_eval_config(trained_checkpoint, training_dataset, tmp_path, "split=train"), tmp_path
    )
    assert trained["overall"]["bin_accuracy"] > 0.9
    assert trained["overall"]["mae"] < 0.1


def test_closed_loop_eval_applies_and_records_temporal_ensembling(
    trained_checkpoint: Path, training_dataset: Path, tmp_path: Path
) -> None:
    overrides = ("closed_loop.episodes_per_task=1", "closed_loop.max_steps=3", "closed_loop.video=false")
    config = compose_eval_config(
        trained_checkpoint, training_dataset, tmp_path, "mode=closed_loop", *overrides,
        "closed_loop.temporal_ensemble_coeff=0.01",
    )  # fmt: skip
    summary = evaluate(config, tmp_path)
    assert summary["temporal_ensemble_coeff"] == 0.01
    assert json.loads((tmp_path / "results.json").read_text())["temporal_ensemble_coeff"] == 0.01
    assert "blended (coefficient 0.01)" in (tmp_path / "results.md").read_text()
    assert sum(t["episodes"] for t in summary["tasks"].values()) == 2
    with pytest.raises(ValueError, match="must be >= 0"):
        bad = compose_eval_config(
            trained_checkpoint, training_dataset, tmp_path, "mode=closed_loop", *overrides,
            "closed_loop.temporal_ensemble_coeff=-1",
        )  # fmt: skip
        evaluate(bad, tmp_path)


def test_eval_rejects_a_missing_checkpoint_and_a_bad_mode(training_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        evaluate(compose_eval_config(tmp_path / "nope.ckpt", training_dataset, tmp_path), tmp_path)
    with pytest.raises(ValueError, match="mode must be one of"):
        evaluate(
            compose_eval_config(tmp_path / "nope.ckpt", training_dataset, tmp_path, "mode=online"), tmp_path
        )


def test_eval_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vid2robot.cli.eval", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "mode=offline|closed_loop" in result.stdout
