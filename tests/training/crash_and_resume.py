"""Training interrupted by a crash and resumed with ``ckpt_path=last``, against the same run uninterrupted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from vid2robot.cli.train import run


class SimulatedCrash(RuntimeError):
    pass


class CrashAfterStep(Callback):
    """Kills training right after optimiser step ``step`` (its checkpoint is already written)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            raise SimulatedCrash(f"simulated crash after step {self.step}")


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")[
        "state_dict"
    ]


def assert_resume_is_exact(
    compose: Callable[..., DictConfig], tmp_path: Path, max_steps: int, crash_at: int
) -> None:
    """Trains ``compose(f"trainer.max_steps={max_steps}")`` straight, then again crashing after ``crash_at``
    steps and resuming: the final weights must be bit-identical."""
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    steps = f"trainer.max_steps={max_steps}"
    run(compose(steps), straight)
    with pytest.raises(SimulatedCrash):
        run(
            compose(steps, f"checkpoint.every_n_train_steps={crash_at}"),
            interrupted,
            extra_callbacks=[CrashAfterStep(crash_at)],
        )
    partial = final_weights(interrupted)
    run(compose(steps, "ckpt_path=last"), interrupted)
    expected, resumed = final_weights(straight), final_weights(interrupted)
    assert any(not torch.equal(partial[k], expected[k]) for k in expected), (
        "the interrupted run did not stop early"
    )
    for key, value in expected.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=0, msg=f"{key} differs after resume")
