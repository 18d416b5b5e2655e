"""Training never loses a user's files: resumed logs continue, saves are atomic, a broken last.ckpt is skipped."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest
import torch
from crash_and_resume import CrashAfterStep, SimulatedCrash
from test_train_cli import compose_policy_config

from detection.safe_files import CheckpointError
from vid2robot.cli.train import run
from vid2robot.training.checkpoint_io import AtomicCheckpointIO


def _steps(run_dir: Path) -> list[int]:
    """The steps of the training-loss rows of the run's metrics.csv, in file order."""
    with open(run_dir / "csv" / "metrics.csv", newline="") as handle:
        return [int(float(row["step"])) for row in csv.DictReader(handle) if row.get("train/loss")]


def _interrupted_run(dataset: Path, run_dir: Path, crash_after: int = 4) -> None:
    with pytest.raises(SimulatedCrash):
        run(
            compose_policy_config(dataset, "trainer.max_steps=8", "checkpoint.every_n_train_steps=2"),
            run_dir,
            extra_callbacks=[CrashAfterStep(crash_after)],
        )


def test_a_resumed_run_continues_its_metrics_csv(training_dataset: Path, tmp_path: Path) -> None:
    """Lightning's CSV logger emptied metrics.csv on resume (the rows before the crash were lost)."""
    _interrupted_run(training_dataset, tmp_path)
    before = _steps(tmp_path)
    assert before[:3] == [0, 1, 2]
    run(compose_policy_config(training_dataset, "trainer.max_steps=8", "ckpt_path=last"), tmp_path)
    after = _steps(tmp_path)
    assert after == list(range(8))  # the rows before the checkpoint kept, those after it logged once


def test_an_interrupted_save_leaves_the_previous_checkpoint_whole(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1, "w": torch.ones(4)}, target)
    whole = target.read_bytes()

    def killed_mid_write(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"global_step": 2, "w": torch.zeros(4)}, target)
    assert target.read_bytes() == whole and sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_training_saves_through_the_atomic_io(training_dataset: Path, tmp_path: Path, monkeypatch) -> None:
    saved = []
    original = AtomicCheckpointIO.save_checkpoint

    def spy(self, checkpoint, path, storage_options=None):
        saved.append(Path(path).name)
        return original(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", spy)
    run(compose_policy_config(training_dataset, "trainer.max_steps=2"), tmp_path)
    assert "last.ckpt" in saved


def test_resume_from_a_corrupt_last_falls_back_to_the_newest_whole_one(
    training_dataset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _interrupted_run(training_dataset, tmp_path)
    checkpoints = tmp_path / "checkpoints"
    last = checkpoints / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # a save killed half-way
    with caplog.at_level(logging.WARNING):
        run(compose_policy_config(training_dataset, "trainer.max_steps=8", "ckpt_path=last"), tmp_path)
    assert "last.ckpt is a truncated or corrupt checkpoint" in caplog.text
    assert "resuming from the newest whole checkpoint instead" in caplog.text and "step=000004" in caplog.text
    assert torch.load(last, weights_only=True, map_location="cpu")["global_step"] == 8
    for path in checkpoints.glob("*.ckpt"):
        path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"No other whole checkpoint .* start afresh"):
        run(compose_policy_config(training_dataset, "trainer.max_steps=8", "ckpt_path=last"), tmp_path)
