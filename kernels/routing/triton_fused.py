"""Bi-level routing attention as fused Triton kernels (forward and backward).

Each program takes a tile of one query region's tokens and walks the ``k * T`` routed key tokens in tiles,
reading each key row straight from ``k``/``v`` through ``topk_index`` (key column c is token ``c % T`` of
routed region ``topk_index[c // T]``), so the top-k-fold gathered copy of the official code never exists.
Backward: ``dq`` is owned by the program; ``dk``/``dv`` rows are shared by every query region routed to them
and are accumulated with fp32 atomics (FA2's key-major dk/dv pass would need the inverse routing, a variable
number of query regions per key region). Tiles, warps and stages are autotuned per head dim and power-of-two
region / routed-token size class.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels import triton_common
from kernels.calls import RoutingCall
from kernels.triton_common import LOG2E, load_backward_rows, online_softmax_step

# (tiles, num_warps, num_stages); the first is the interpreter's (a 70-token region spans five 16-row tiles).
_FORWARD = [
    ({"BLOCK_M": 16, "BLOCK_N": 32}, 4, 2),
    ({"BLOCK_M": 16, "BLOCK_N": 64}, 4, 2),
    ({"BLOCK_M": 16, "BLOCK_N": 128}, 4, 3),
    ({"BLOCK_M": 32, "BLOCK_N": 64}, 4, 2),
    ({"BLOCK_M": 64, "BLOCK_N": 64}, 4, 2),
    ({"BLOCK_M": 64, "BLOCK_N": 128}, 8, 2),
]  # fmt: skip
_BACKWARD = [
    ({"BLOCK_M": 16, "BLOCK_N": 32}, 4, 2),
    ({"BLOCK_M": 16, "BLOCK_N": 64}, 4, 2),
    ({"BLOCK_M": 32, "BLOCK_N": 32}, 4, 2),
    ({"BLOCK_M": 32, "BLOCK_N": 64}, 4, 2),
    ({"BLOCK_M": 64, "BLOCK_N": 64}, 8, 2),
]  # fmt: skip
# Each kernel's candidates (the tests run every one under the interpreter).
TUNING = {"_forward": _FORWARD, "_backward": _BACKWARD}
_KEY = ["tune_m", "tune_n", "BLOCK_D"]
_PRUNE = triton_common.prune_to(
    lambda args: {"BLOCK_M": args["region_size"], "BLOCK_N": args["topk"] * args["region_size"]}
)


@triton.jit
def _routed_keys(K, V, IDX, batch, region, regions, topk, region_size, start, base, offs_d, d_ok, head_dim,
                 BLOCK_N: tl.constexpr):  # fmt: skip
    """Routed key columns ``start .. start + BLOCK_N`` of one query region: which columns exist, their
    key/value offsets and mask, and the loaded ``k`` and ``v``."""
    cols = start + tl.arange(0, BLOCK_N)
    c_ok = cols < topk * region_size
    slot = cols // region_size
    routed_region = tl.load(IDX + (batch * regions + region) * topk + slot, mask=slot < topk, other=0)
    key_rows = routed_region * region_size + cols % region_size
    kv_offsets = base + key_rows[:, None] * head_dim + offs_d[None, :]
    kv_mask = c_ok[:, None] & d_ok[None, :]
    k = tl.load(K + kv_offsets, mask=kv_mask, other=0.0)
    v = tl.load(V + kv_offsets, mask=kv_mask, other=0.0)
    return c_ok, kv_offsets, kv_mask, k, v


@triton.jit
def _query_tile(regions, region_size, head_dim, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    """This program's query tile: its region, batch x head, token rows and their masks, and the head's offset."""
    tiles_per_region = tl.cdiv(region_size, BLOCK_M)
    region = tl.program_id(0) // tiles_per_region
    bh = tl.program_id(1)
    n = regions * region_size
    local = (tl.program_id(0) % tiles_per_region) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    return (
        region,
        bh,
        n,
        region * region_size + local,
        offs_d,
        local < region_size,
        offs_d < head_dim,
        bh * n * head_dim,
    )


@triton.autotune(
    triton_common.tuning_configs(_FORWARD), key=_KEY, prune_configs_by=_PRUNE, cache_results=True
)
@triton.jit(do_not_specialize=triton_common.TUNE_ARGS)
def _forward(
    Q, K, V, IDX, OUT, LSE,
    regions, region_size, topk, head_dim, heads, scale, tune_m, tune_n,
    PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    region, bh, n, rows, offs_d, m_ok, d_ok, base = _query_tile(
        regions, region_size, head_dim, BLOCK_M, BLOCK_D
    )
    q = tl.load(Q + base + rows[:, None] * head_dim + offs_d[None, :], mask=m_ok[:, None] & d_ok[None, :],
                other=0.0)  # fmt: skip

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    n_cols = topk * region_size
    for start in range(0, n_cols, BLOCK_N):
        c_ok, _, _, k, v = _routed_keys(K, V, IDX, bh // heads, region, regions, topk, region_size, start, base,
                                        offs_d, d_ok, head_dim, BLOCK_N)  # fmt: skip
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * (scale * LOG2E)
        s = tl.where(c_ok[None, :], s, float("-inf"))
        m_i, l_i, acc = online_softmax_step(s, v, m_i, l_i, acc, PRECISION)
    acc = acc / l_i[:, None]
    tl.store(OUT + base + rows[:, None] * head_dim + offs_d[None, :], acc.to(OUT.dtype.element_ty),
             mask=m_ok[:, None] & d_ok[None, :])  # fmt: skip
    tl.store(LSE + bh * n + rows, m_i + tl.log2(l_i), mask=m_ok)


@triton.autotune(
    triton_common.tuning_configs(_BACKWARD),
    key=_KEY,
    prune_configs_by=_PRUNE,
    reset_to_zero=["DK", "DV"],
    cache_results=True,
)
@triton.jit(do_not_specialize=triton_common.TUNE_ARGS)
def _backward(
    Q, K, V, IDX, DO, LSE, DELTA, DQ, DK, DV,
    regions, region_size, topk, head_dim, heads, scale, tune_m, tune_n,
    PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    region, bh, n, rows, offs_d, m_ok, d_ok, base = _query_tile(
        regions, region_size, head_dim, BLOCK_M, BLOCK_D
    )
    q_offsets, row_mask, q, do, lse, delta = load_backward_rows(
        Q, DO, LSE, DELTA, rows, m_ok, offs_d, d_ok, head_dim, base, bh * n
    )

    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    n_cols = topk * region_size
    for start in range(0, n_cols, BLOCK_N):
        c_ok, kv_offsets, kv_mask, k, v = _routed_keys(K, V, IDX, bh // heads, region, regions, topk, region_size,
                                                       start, base, offs_d, d_ok, head_dim, BLOCK_N)  # fmt: skip
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * (scale * LOG2E)
        p = tl.exp2(tl.where(m_ok[:, None] & c_ok[None, :], s, float("-inf")) - lse[:, None])
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        ds = (p * (dp - delta[:, None])).to(q.dtype)
        dq += tl.dot(ds, k, input_precision=PRECISION)
        tl.atomic_add(
            DK + kv_offsets, tl.dot(tl.trans(ds), q, input_precision=PRECISION) * scale, mask=kv_mask
        )
        tl.atomic_add(DV + kv_offsets, tl.dot(tl.trans(p.to(do.dtype)), do, input_precision=PRECISION),
                      mask=kv_mask)  # fmt: skip
    tl.store(DQ + q_offsets, (dq * scale).to(DQ.dtype.element_ty), mask=row_mask)


def _scalars(q: torch.Tensor, topk: int, region_size: int, scale: float) -> tuple:
    """The scalar arguments both kernels take after their tensors (positional: the autotuner reads them)."""
    _, h, n, d = q.shape
    return (
        n // region_size,
        region_size,
        topk,
        d,
        h,
        scale,
        triton_common.size_class(region_size),
        triton_common.size_class(topk * region_size),
    )


def _grid(q: torch.Tensor, region_size: int):
    b, h, n, _ = q.shape
    return lambda meta: (n // region_size * triton.cdiv(region_size, meta["BLOCK_M"]), b * h)


class _RoutedAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, topk_index, region_size, scale):
        b, h, n, d = q.shape
        q, k, v, topk_index = q.contiguous(), k.contiguous(), v.contiguous(), topk_index.contiguous()
        topk = topk_index.shape[-1]
        out = torch.empty_like(q)
        lse = torch.empty(b, h, n, device=q.device, dtype=torch.float32)
        _forward[_grid(q, region_size)](
            q, k, v, topk_index, out, lse, *_scalars(q, topk, region_size, scale),
            PRECISION=triton_common.dot_precision(q.dtype), BLOCK_D=triton_common.block_for(d, high=256),
        )  # fmt: skip
        ctx.save_for_backward(q, k, v, topk_index, out, lse)
        ctx.region_size, ctx.scale = region_size, scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, topk_index, out, lse = ctx.saved_tensors
        d = q.shape[-1]
        grad_out, delta = triton_common.backward_inputs(grad_out, out)
        dq = torch.empty_like(q)  # owned by one program; dk/dv are accumulated by every routed query region
        dk = torch.zeros(k.shape, device=q.device, dtype=torch.float32)
        dv = torch.zeros(v.shape, device=q.device, dtype=torch.float32)
        topk = topk_index.shape[-1]
        _backward[_grid(q, ctx.region_size)](
            q, k, v, topk_index, grad_out, lse, delta, dq, dk, dv, *_scalars(q, topk, ctx.region_size, ctx.scale),
            PRECISION=triton_common.dot_precision(q.dtype), BLOCK_D=triton_common.block_for(d, high=256),
        )  # fmt: skip
        return dq, dk.to(k.dtype), dv.to(v.dtype), None, None, None


def routed_attention(call: RoutingCall) -> torch.Tensor:
    q, k, v, topk_index, region_size, scale = call
    return triton_common.apply_in_compute_dtype(_RoutedAttention, (q, k, v), topk_index, region_size, scale)
