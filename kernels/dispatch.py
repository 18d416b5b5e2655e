"""Backend choice for the public ops: ``auto`` resolves to one of ``reference``, ``flex`` or ``triton``."""

from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType

import torch

BACKENDS = ("auto", "reference", "flex", "triton")
OPS = ("boxrpb", "routing", "neighborhood")
_IMPLEMENTATION = {"reference": "reference", "flex": "flex", "triton": "triton_fused"}


@functools.cache
def triton_importable() -> bool:
    try:
        importlib.import_module("triton")
    except ImportError:
        return False
    return True


def triton_interpreted() -> bool:
    """True where Triton kernels run through its CPU interpreter (``TRITON_INTERPRET=1`` at import time)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def resolve(backend: str, device: torch.device, needs_grad: bool) -> str:
    """The concrete backend for one call; raises ValueError where the asked one cannot run here."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        if device.type == "cuda" and triton_importable():
            return "triton"
        # CPU: the compiled FlexAttention forward saves memory but has no backward here and pays a compile per
        # shape; the reference is the fastest at the sizes CPU runs (docs/benchmarks.md, "Kernels").
        return "reference"
    if backend == "flex" and needs_grad and device.type != "cuda":
        raise ValueError(
            f"backend='flex' has no backward on {device.type} (FlexAttention trains on CUDA only); "
            "use backend='reference' (or 'auto') for training on CPU, or run under torch.no_grad()"
        )
    if backend == "triton":
        if not triton_importable():
            raise ValueError("backend='triton' needs the triton package: pip install 'vid2robot[kernels]'")
        if device.type != "cuda" and not triton_interpreted():
            raise ValueError(
                f"backend='triton' needs CUDA tensors (got {device.type}); on CPU it runs only under the "
                "Triton interpreter (TRITON_INTERPRET=1 set before importing kernels), which is for tests"
            )
    return backend


def implementation(op: str, backend: str) -> ModuleType:
    """The module implementing ``op`` for a concrete ``backend`` (imported on first use)."""
    return importlib.import_module(f"kernels.{op}.{_IMPLEMENTATION[backend]}")
