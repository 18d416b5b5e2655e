"""The package's export format, one for policies and detectors: a folder with ``model.safetensors`` (the
weights) and ``config.json`` (what builds the model: a policy's ``policy_class`` + ``policy_config``, a
detector's ``model`` + ``input_size``). Written atomically (each file beside its target, then renamed, so an
interrupted save leaves the previous files whole; other files in the folder are left alone), read safely, and
loaded strictly with every missing, unexpected and mis-shaped tensor named."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from detection.safe_files import (
    CheckpointError,
    atomic_save_safetensors,
    atomic_write_json,
    load_safetensors_file,
    read_json_file,
)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def write_export(folder: str | Path, model: nn.Module, meta: dict[str, Any], writer: str) -> Path:
    """Save ``model``'s weights and ``meta`` into ``folder``; ``writer`` names the saving call in errors."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{writer} writes a folder; {folder} is a file (choose another path)")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_save_safetensors(state, folder / WEIGHTS_NAME)
    atomic_write_json(folder / CONFIG_NAME, meta)
    return folder


def read_export(
    folder: Path, required: Iterable[str], writer: str, map_location: str | torch.device = "cpu"
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(meta, state)`` of an export folder; ``required`` are the ``config.json`` entries the caller needs."""
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} has no {name} (expected a folder written by {writer})")
    meta = read_json_file(folder / CONFIG_NAME, f"model config ({writer}'s config.json)")
    missing = [key for key in required if key not in meta]
    if missing:
        raise CheckpointError(f"{folder / CONFIG_NAME} needs {', '.join(repr(k) for k in missing)} entries")
    return meta, load_safetensors_file(folder / WEIGHTS_NAME, map_location)


def load_state_strictly(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load every tensor of ``state`` into ``model``, naming whatever does not fit."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{source} does not fit {type(model).__name__}: missing keys {missing}, "
            f"unexpected keys {unexpected}, shape mismatches {mismatched}"
        )
    model.load_state_dict(state)
