"""Helpers shared by the hand-written Triton backends."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import triton
import triton.language as tl

from kernels.dispatch import triton_interpreted

# exp(x) == exp2(x * LOG2E): the kernels keep logits in the log2 domain. A constexpr: jit code may read no
# other globals (the interpreter does not enforce this, compiled Triton does).
LOG2E = tl.constexpr(1.4426950408889634)


@triton.jit
def online_softmax_step(s, v, m_i, l_i, acc, PRECISION: tl.constexpr):
    """One key tile of FlashAttention's online softmax: log2-domain logits ``s [M, N]`` and values ``v [N, D]``
    update the running row max ``m_i``, normaliser ``l_i`` and output ``acc``. A row whose logits so far are all
    -inf (no allowed key yet) stays at zero instead of producing NaN."""
    m_new = tl.maximum(m_i, tl.max(s, 1))
    m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
    alpha = tl.exp2(m_i - m_use)
    p = tl.exp2(s - m_use[:, None])
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
    return m_new, l_i, acc


@triton.jit
def load_backward_rows(Q, DO, LSE, DELTA, rows, rows_ok, offs_d, d_ok, head_dim, head_offset, stats_offset):
    """What every backward kernel reads for a query tile: its offsets and mask, ``q``, ``dO``, the forward's
    log2-domain log-sum-exp and ``delta`` (``rowsum(dO * O)``)."""
    q_offsets = head_offset + rows[:, None] * head_dim + offs_d[None, :]
    row_mask = rows_ok[:, None] & d_ok[None, :]
    q = tl.load(Q + q_offsets, mask=row_mask, other=0.0)
    do = tl.load(DO + q_offsets, mask=row_mask, other=0.0)
    lse = tl.load(LSE + stats_offset + rows, mask=rows_ok, other=0.0)
    delta = tl.load(DELTA + stats_offset + rows, mask=rows_ok, other=0.0)
    return q_offsets, row_mask, q, do, lse, delta


# Integer kernel arguments that only key the autotuner: never specialised (no recompiles when they change).
TUNE_ARGS = ("tune_m", "tune_n")


def block_for(size: int, low: int = 16, high: int = 64) -> int:
    """A power-of-two tile edge covering ``size``, clamped to [low, high] (tl.dot needs edges >= 16)."""
    return max(low, min(high, triton.next_power_of_2(size)))


def size_class(size: int) -> int:
    """The autotuning key of a size: its power-of-two ceiling, so a new image size reuses a tuned config."""
    return triton.next_power_of_2(size)


def tuning_configs(candidates: Sequence[tuple[dict[str, int], int, int]]) -> list[triton.Config]:
    """``(tile sizes, num_warps, num_stages)`` candidates as autotuner configs, the default first.

    Under the interpreter only the default is kept: a single config is never timed, and timing candidates
    there would be slow and meaningless (tests pick their shapes so that this default crosses tile borders).
    """
    if triton_interpreted():
        candidates = candidates[:1]
    return [
        triton.Config(dict(tiles), num_warps=warps, num_stages=stages) for tiles, warps, stages in candidates
    ]


def prune_to(limits: Callable[[dict], dict[str, int]]) -> dict[str, Callable]:
    """``prune_configs_by`` for ``triton.autotune``: drop candidates whose tile edges exceed the problem.

    ``limits(args)`` maps tile names to the size they cover (``{"BLOCK_M": args["n_q"]}``); a 20-query problem
    gains nothing from a 128-row tile. At least the candidate with the smallest tiles is kept.
    """

    def early_config_prune(
        configs: list[triton.Config], named_args: dict, **_: object
    ) -> list[triton.Config]:
        sizes = {name: max(16, triton.next_power_of_2(n)) for name, n in limits(named_args).items()}
        kept = [c for c in configs if all(c.kwargs[name] <= edge for name, edge in sizes.items())]
        return kept or [min(configs, key=lambda c: tuple(c.kwargs[name] for name in sizes))]

    return {"early_config_prune": early_config_prune}


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernels see: the interpreter's bf16 ``tl.dot`` is wrong, so it gets fp32 there."""
    if dtype == torch.bfloat16 and triton_interpreted():
        return torch.float32
    return dtype


def dot_precision(dtype: torch.dtype) -> str:
    """fp32 inputs keep fp32 products (as torch matmul does by default); half types use the tensor cores."""
    return "ieee" if dtype == torch.float32 else "tf32"


def apply_in_compute_dtype(
    function: type[torch.autograd.Function], tensors: Sequence[torch.Tensor], *rest: object
) -> torch.Tensor:
    """``function.apply`` on ``tensors`` cast to the kernels' dtype (``compute_dtype``), then ``rest``; the output
    comes back in the first tensor's dtype."""
    run_dtype = compute_dtype(tensors[0].dtype)
    return function.apply(*(t.to(run_dtype) for t in tensors), *rest).to(tensors[0].dtype)


def backward_inputs(grad_out: torch.Tensor, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FlashAttention-2's backward preprocessing: ``dO`` contiguous in the output's dtype, and the fp32 row term
    ``delta = rowsum(dO * O)`` every backward kernel reads."""
    grad_out = grad_out.contiguous().to(out.dtype)
    return grad_out, (grad_out.float() * out.float()).sum(-1)
