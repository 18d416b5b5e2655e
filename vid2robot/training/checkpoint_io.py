"""Checkpoint files that survive being killed mid-save, and a resume that never starts from a broken one."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.plugins.io import TorchCheckpointIO

from detection.safe_files import CheckpointError, atomic_torch_save, verify_zip

log = logging.getLogger(__name__)
_STEP = re.compile(r"step=(\d+)")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO, but a local save writes a temporary file beside the target, fsyncs it
    and renames it over the target. Lightning's own save moves a temporary file from ``$TMPDIR`` into place,
    which across filesystems is a copy: a process killed during that copy left a half-written ``last.ckpt``."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_torch_save(checkpoint, Path(path))


def _step_of(path: Path) -> int:
    match = _STEP.search(path.name)
    return int(match.group(1)) if match else -1


def readable_resume_checkpoint(path: Path) -> Path:
    """``path`` if it is a whole checkpoint, else the newest whole one beside it (a warning names the broken one).

    Raises ``CheckpointError`` naming every broken file when none can be resumed from.
    """
    try:
        verify_zip(path, "checkpoint")
        return path
    except CheckpointError as broken:
        others = sorted(
            (p for p in path.parent.glob("*.ckpt") if p != path),
            key=lambda p: (_step_of(p), p.stat().st_mtime),
        )
        for candidate in reversed(others):
            try:
                verify_zip(candidate, "checkpoint")
            except CheckpointError:
                continue
            log.warning("%s; resuming from the newest whole checkpoint instead: %s", broken, candidate)
            return candidate
        raise CheckpointError(
            f"{broken}. No other whole checkpoint in {path.parent} to resume from: start afresh (drop ckpt_path) "
            "or pass ckpt_path=<a checkpoint file>"
        ) from None


def checkpoint_step(path: Path) -> int:
    """The global step a Lightning checkpoint was saved at (read lazily, tensors not loaded)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return int(checkpoint.get("global_step", 0))
