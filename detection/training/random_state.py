"""Python's, NumPy's and torch's global random state carried in checkpoints, for exact resume.

Lightning restores weights, optimiser and loop counters but not the global random generators, so after a
resume dropout, drop-path and any other draw in the training process differ from the uninterrupted run's.
The states are stored as plain integers and tensors: the checkpoint still loads with ``weights_only=True``.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

KEY = "global_random_state"


def capture() -> dict[str, Any]:
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RandomStateCheckpoint(Callback):
    """Saves the global random state with every checkpoint and puts it back when training resumes."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[KEY] = capture()

    def on_load_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict) -> None:
        self._pending = checkpoint.get(KEY)  # applied at train start: restoring runs before setup's draws

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._pending is not None:
            restore(self._pending)
            self._pending = None
