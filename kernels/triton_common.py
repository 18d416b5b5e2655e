"""Helpers shared by the hand-written Triton backends."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.dispatch import triton_interpreted

# exp(x) == exp2(x * LOG2E): the kernels keep logits in the log2 domain. A constexpr: jit code may read no
# other globals (the interpreter does not enforce this, compiled Triton does).
LOG2E = tl.constexpr(1.4426950408889634)


def block_for(size: int, low: int = 16, high: int = 64) -> int:
    """A power-of-two tile edge covering ``size``, clamped to [low, high] (tl.dot needs edges >= 16)."""
    return max(low, min(high, triton.next_power_of_2(size)))


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernels see: the interpreter's bf16 ``tl.dot`` is wrong, so it gets fp32 there."""
    if dtype == torch.bfloat16 and triton_interpreted():
        return torch.float32
    return dtype


def dot_precision(dtype: torch.dtype) -> str:
    """fp32 inputs keep fp32 products (as torch matmul does by default); half types use the tensor cores."""
    return "ieee" if dtype == torch.float32 else "tf32"
