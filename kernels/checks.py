"""Input validation shared by the public ops: every error names the bad value and what is expected.

Shapes, dtypes and devices (tensor metadata) are always checked. Checks of tensor *values* read the tensor
back to the host, which on CUDA is a device sync that drains the launch queue on every call, so they run only
in debug mode: ``kernels.set_debug_checks(True)`` or ``KERNELS_DEBUG_CHECKS=1`` in the environment (the tests
turn it on). The ops' own callers build valid values (BiFormer's ``topk_index`` comes from ``torch.topk``).
"""

from __future__ import annotations

import os

import torch

_debug = os.environ.get("KERNELS_DEBUG_CHECKS", "0") == "1"


def set_debug_checks(enabled: bool) -> None:
    """Turn the value checks (which sync the device) on or off for every later call."""
    global _debug
    _debug = bool(enabled)


def debug_checks() -> bool:
    return _debug


def require_rank(name: str, t: torch.Tensor, rank: int, layout: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {layout}, got {type(t).__name__}")
    if t.dim() != rank:
        raise ValueError(f"{name} must have {rank} dims {layout}, got shape {tuple(t.shape)}")


def require_floating(*named: tuple[str, torch.Tensor]) -> None:
    """All tensors share one floating dtype and one device."""
    first_name, first = named[0]
    if not first.is_floating_point():
        raise ValueError(f"{first_name} must be a floating tensor, got dtype {first.dtype}")
    for name, t in named[1:]:
        if t.dtype != first.dtype:
            raise ValueError(
                f"{name} has dtype {t.dtype} but {first_name} has {first.dtype}; cast them to one dtype"
            )
        if t.device != first.device:
            raise ValueError(f"{name} is on {t.device} but {first_name} is on {first.device}")


def require_shape(name: str, t: torch.Tensor, expected: tuple[int, ...], layout: str) -> None:
    if tuple(t.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {layout} = {tuple(expected)}, got {tuple(t.shape)}")


def require_index_range(name: str, index: torch.Tensor, size: int) -> None:
    """Values in ``[0, size)`` (a value check: reads ``index`` back, a device sync on CUDA)."""
    low, high = int(index.min()), int(index.max())
    if low < 0 or high >= size:
        raise ValueError(f"{name} values must lie in [0, {size}), got range [{low}, {high}]")


def pair(name: str, value: int | tuple[int, int]) -> tuple[int, int]:
    """An int or a pair of positive ints, as NATTEN accepts for kernel_size and dilation."""
    items = (value, value) if isinstance(value, int) else tuple(value)
    if len(items) != 2 or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 1 for i in items):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {value!r}")
    return items  # type: ignore[return-value]


def default_scale(head_dim: int, scale: float | None) -> float:
    if scale is None:
        return head_dim**-0.5
    if not scale > 0:
        raise ValueError(f"scale must be a positive float, got {scale!r}")
    return float(scale)
