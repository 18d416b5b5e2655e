"""BoxRPB cross-attention as fused Triton kernels (forward and backward), FlashAttention-2 style.

The bias of query q at key n = y*W + x is ``bias_x[q, x] + bias_y[q, y]``, read from the two small per-axis
tables, so no ``Q x H*W`` tensor exists. Every kernel walks the keys as image-row chunks of ``BLOCK_X``
columns, so a tile's bias is the query tile's ``bias_x`` chunk (read once per chunk, reused down all rows)
plus one ``bias_y`` value per query: no per-element gather. Forward: one program per query tile, online
softmax over the chunks, saving the row log-sum-exp. Backward, FA2's split: one program per key chunk
accumulates ``dk``/``dv`` over every query tile (no atomics), one program per query tile accumulates ``dq``
and ``d bias_x`` (a sum over rows, in registers); ``d bias_y`` (a sum over columns) is added per chunk.
Tiles, warps and stages are autotuned per head dim and power-of-two query count / image width class.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels import triton_common
from kernels.boxrpb.reference import PADDING_LOGIT
from kernels.calls import BoxRPBCall
from kernels.triton_common import LOG2E, load_backward_rows, online_softmax_step

# (tiles, num_warps, num_stages); the first is the interpreter's (Q=67 spans two query tiles, W=70 three chunks).
_QUERY_MAJOR = [
    ({"BLOCK_M": 64, "BLOCK_X": 32}, 4, 2),
    ({"BLOCK_M": 64, "BLOCK_X": 64}, 4, 2),
    ({"BLOCK_M": 128, "BLOCK_X": 32}, 4, 2),
    ({"BLOCK_M": 128, "BLOCK_X": 64}, 8, 2),
    ({"BLOCK_M": 128, "BLOCK_X": 128}, 8, 2),
    ({"BLOCK_M": 64, "BLOCK_X": 128}, 4, 3),
    ({"BLOCK_M": 32, "BLOCK_X": 64}, 4, 3),
]  # fmt: skip
_KEY_MAJOR = [
    ({"BLOCK_M": 64, "BLOCK_X": 32}, 4, 2),
    ({"BLOCK_M": 64, "BLOCK_X": 64}, 4, 2),
    ({"BLOCK_M": 32, "BLOCK_X": 64}, 4, 3),
    ({"BLOCK_M": 128, "BLOCK_X": 64}, 8, 2),
    ({"BLOCK_M": 64, "BLOCK_X": 128}, 8, 2),
    ({"BLOCK_M": 128, "BLOCK_X": 32}, 4, 2),
]  # fmt: skip
# Each kernel's candidates (the tests run every one under the interpreter).
TUNING = {"_forward": _QUERY_MAJOR, "_backward_dkdv": _KEY_MAJOR, "_backward_dq": _QUERY_MAJOR}
_KEY = ["tune_m", "tune_n", "BLOCK_D", "HAS_PAD"]
_PRUNE = triton_common.prune_to(lambda args: {"BLOCK_M": args["n_q"], "BLOCK_X": args["width"]})


@triton.jit
def _query_tile(n_q, height, width, head_dim, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    """This program's batch x head, key count, query rows and head-dim lanes, and their masks."""
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    return tl.program_id(1), height * width, offs_m, offs_d, offs_m < n_q, offs_d < head_dim


@triton.autotune(
    triton_common.tuning_configs(_QUERY_MAJOR), key=_KEY, prune_configs_by=_PRUNE, cache_results=True
)
@triton.jit(do_not_specialize=triton_common.TUNE_ARGS)
def _forward(
    Q, K, V, BX, BY, PAD, OUT, LSE,
    n_q, height, width, head_dim, heads, scale, tune_m, tune_n,
    HAS_PAD: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_X: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    bh, n_k, offs_m, offs_d, m_ok, d_ok = _query_tile(n_q, height, width, head_dim, BLOCK_M, BLOCK_D)
    q = tl.load(Q + bh * n_q * head_dim + offs_m[:, None] * head_dim + offs_d[None, :],
                mask=m_ok[:, None] & d_ok[None, :], other=0.0)  # fmt: skip
    kv_base = bh * n_k * head_dim
    bx_rows = BX + bh * n_q * width + offs_m[:, None] * width
    by_rows = BY + bh * n_q * height + offs_m * height

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for x0 in range(0, width, BLOCK_X):
        offs_x = x0 + tl.arange(0, BLOCK_X)
        x_ok = offs_x < width
        kv_mask = x_ok[:, None] & d_ok[None, :]
        bias_x = tl.load(bx_rows + offs_x[None, :], mask=m_ok[:, None] & x_ok[None, :], other=0.0).to(
            tl.float32
        )
        for y in range(0, height):
            offs_n = y * width + offs_x
            kv_offsets = kv_base + offs_n[:, None] * head_dim + offs_d[None, :]
            k = tl.load(K + kv_offsets, mask=kv_mask, other=0.0)
            s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale + bias_x
            s += tl.load(by_rows + y, mask=m_ok, other=0.0).to(tl.float32)[:, None]
            if HAS_PAD:
                s += tl.load(PAD + (bh // heads) * n_k + offs_n, mask=x_ok, other=0.0)[None, :]
            s = tl.where(x_ok[None, :], s * LOG2E, float("-inf"))
            v = tl.load(V + kv_offsets, mask=kv_mask, other=0.0)
            m_i, l_i, acc = online_softmax_step(s, v, m_i, l_i, acc, PRECISION)
    acc = acc / l_i[:, None]
    tl.store(OUT + bh * n_q * head_dim + offs_m[:, None] * head_dim + offs_d[None, :],
             acc.to(OUT.dtype.element_ty), mask=m_ok[:, None] & d_ok[None, :])  # fmt: skip
    tl.store(LSE + bh * n_q + offs_m, m_i + tl.log2(l_i), mask=m_ok)


@triton.autotune(
    triton_common.tuning_configs(_KEY_MAJOR), key=_KEY, prune_configs_by=_PRUNE, cache_results=True
)
@triton.jit(do_not_specialize=triton_common.TUNE_ARGS)
def _backward_dkdv(
    Q, K, V, BX, BY, PAD, DO, LSE, DELTA, DK, DV,
    n_q, height, width, head_dim, heads, scale, tune_m, tune_n,
    HAS_PAD: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_X: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    bh = tl.program_id(1)
    chunks = tl.cdiv(width, BLOCK_X)
    y = tl.program_id(0) // chunks
    offs_x = (tl.program_id(0) % chunks) * BLOCK_X + tl.arange(0, BLOCK_X)
    offs_d = tl.arange(0, BLOCK_D)
    x_ok = offs_x < width
    d_ok = offs_d < head_dim
    n_k = height * width
    offs_n = y * width + offs_x
    kv_offsets = bh * n_k * head_dim + offs_n[:, None] * head_dim + offs_d[None, :]
    kv_mask = x_ok[:, None] & d_ok[None, :]
    k = tl.load(K + kv_offsets, mask=kv_mask, other=0.0)
    v = tl.load(V + kv_offsets, mask=kv_mask, other=0.0)
    pad = tl.zeros([BLOCK_X], tl.float32)
    if HAS_PAD:
        pad = tl.load(PAD + (bh // heads) * n_k + offs_n, mask=x_ok, other=0.0)

    dk = tl.zeros([BLOCK_X, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_X, BLOCK_D], tl.float32)
    for m0 in range(0, n_q, BLOCK_M):
        offs_m = m0 + tl.arange(0, BLOCK_M)
        m_ok = offs_m < n_q
        _, _, q, do, lse, delta = load_backward_rows(
            Q, DO, LSE, DELTA, offs_m, m_ok, offs_d, d_ok, head_dim, bh * n_q * head_dim, bh * n_q
        )
        tile_mask = m_ok[:, None] & x_ok[None, :]
        bias = tl.load(BX + bh * n_q * width + offs_m[:, None] * width + offs_x[None, :], mask=tile_mask,
                       other=0.0).to(tl.float32)  # fmt: skip
        bias += tl.load(BY + bh * n_q * height + offs_m * height + y, mask=m_ok, other=0.0).to(tl.float32)[
            :, None
        ]
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale + bias + pad[None, :]
        p = tl.exp2(tl.where(tile_mask, s * LOG2E, float("-inf")) - lse[:, None])
        dv += tl.dot(tl.trans(p.to(do.dtype)), do, input_precision=PRECISION)
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        ds = (p * (dp - delta[:, None])).to(q.dtype)
        dk += tl.dot(tl.trans(ds), q, input_precision=PRECISION)
    tl.store(DK + kv_offsets, (dk * scale).to(DK.dtype.element_ty), mask=kv_mask)
    tl.store(DV + kv_offsets, dv.to(DV.dtype.element_ty), mask=kv_mask)


@triton.autotune(
    triton_common.tuning_configs(_QUERY_MAJOR),
    key=_KEY,
    prune_configs_by=_PRUNE,
    reset_to_zero=["DBY"],
    cache_results=True,
)
@triton.jit(do_not_specialize=triton_common.TUNE_ARGS)
def _backward_dq(
    Q, K, V, BX, BY, PAD, DO, LSE, DELTA, DQ, DBX, DBY,
    n_q, height, width, head_dim, heads, scale, tune_m, tune_n,
    HAS_PAD: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_X: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    bh, n_k, offs_m, offs_d, m_ok, d_ok = _query_tile(n_q, height, width, head_dim, BLOCK_M, BLOCK_D)
    q_offsets, row_mask, q, do, lse, delta = load_backward_rows(
        Q, DO, LSE, DELTA, offs_m, m_ok, offs_d, d_ok, head_dim, bh * n_q * head_dim, bh * n_q
    )
    kv_base = bh * n_k * head_dim
    bx_rows = bh * n_q * width + offs_m[:, None] * width
    by_rows = bh * n_q * height + offs_m * height

    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for x0 in range(0, width, BLOCK_X):
        offs_x = x0 + tl.arange(0, BLOCK_X)
        x_ok = offs_x < width
        tile_mask = m_ok[:, None] & x_ok[None, :]
        kv_mask = x_ok[:, None] & d_ok[None, :]
        bias_x = tl.load(BX + bx_rows + offs_x[None, :], mask=tile_mask, other=0.0).to(tl.float32)
        dbx = tl.zeros([BLOCK_M, BLOCK_X], tl.float32)
        for y in range(0, height):
            offs_n = y * width + offs_x
            kv_offsets = kv_base + offs_n[:, None] * head_dim + offs_d[None, :]
            k = tl.load(K + kv_offsets, mask=kv_mask, other=0.0)
            v = tl.load(V + kv_offsets, mask=kv_mask, other=0.0)
            s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale + bias_x
            s += tl.load(BY + by_rows + y, mask=m_ok, other=0.0).to(tl.float32)[:, None]
            if HAS_PAD:
                s += tl.load(PAD + (bh // heads) * n_k + offs_n, mask=x_ok, other=0.0)[None, :]
            p = tl.exp2(tl.where(tile_mask, s * LOG2E, float("-inf")) - lse[:, None])
            dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
            ds = p * (dp - delta[:, None])  # gradient of the loss w.r.t. the logit (bias included)
            dbx += ds
            tl.atomic_add(DBY + by_rows + y, tl.sum(ds, 1), mask=m_ok)
            dq += tl.dot(ds.to(q.dtype), k, input_precision=PRECISION)
        tl.store(DBX + bx_rows + offs_x[None, :], dbx.to(DBX.dtype.element_ty), mask=tile_mask)
    tl.store(DQ + q_offsets, (dq * scale).to(DQ.dtype.element_ty), mask=row_mask)


def _padding_logits(key_padding_mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    if key_padding_mask is None:
        return like.new_empty(0, dtype=torch.float32)
    return key_padding_mask.to(torch.float32) * PADDING_LOGIT


def _scalars(q: torch.Tensor, bias_x: torch.Tensor, bias_y: torch.Tensor, scale: float) -> tuple:
    """The scalar arguments every kernel takes after its tensors (positional: the autotuner reads them)."""
    n_q, d, height, width = q.shape[2], q.shape[3], bias_y.shape[-1], bias_x.shape[-1]
    return (
        n_q,
        height,
        width,
        d,
        q.shape[1],
        scale,
        triton_common.size_class(n_q),
        triton_common.size_class(width),
    )


def _query_grid(meta: dict, n_q: int, bh: int) -> tuple[int, int]:
    return triton.cdiv(n_q, meta["BLOCK_M"]), bh


class _BoxRPBAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bias_x, bias_y, key_padding_mask, scale):
        b, h, n_q, d = q.shape
        q, k, v, bias_x, bias_y = (t.contiguous() for t in (q, k, v, bias_x, bias_y))
        pad = _padding_logits(key_padding_mask, q)
        out = torch.empty_like(q)
        lse = torch.empty(b, h, n_q, device=q.device, dtype=torch.float32)
        _forward[lambda meta: _query_grid(meta, n_q, b * h)](
            q, k, v, bias_x, bias_y, pad, out, lse, *_scalars(q, bias_x, bias_y, scale),
            HAS_PAD=key_padding_mask is not None, PRECISION=triton_common.dot_precision(q.dtype), BLOCK_D=triton_common.block_for(d, high=256),
        )  # fmt: skip
        ctx.save_for_backward(q, k, v, bias_x, bias_y, pad, out, lse)
        ctx.has_pad = key_padding_mask is not None
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, bias_x, bias_y, pad, out, lse = ctx.saved_tensors
        b, h, n_q, d = q.shape
        grad_out, delta = triton_common.backward_inputs(grad_out, out)
        dq, dk, dv, dbx = (torch.empty_like(t) for t in (q, k, v, bias_x))
        dby = torch.zeros(bias_y.shape, device=q.device, dtype=torch.float32)  # accumulated across chunks
        scalars = _scalars(q, bias_x, bias_y, ctx.scale)
        height, width = bias_y.shape[-1], bias_x.shape[-1]
        common = {
            "HAS_PAD": ctx.has_pad,
            "PRECISION": triton_common.dot_precision(q.dtype),
            "BLOCK_D": triton_common.block_for(d, high=256),
        }
        _backward_dkdv[lambda meta: (height * triton.cdiv(width, meta["BLOCK_X"]), b * h)](
            q, k, v, bias_x, bias_y, pad, grad_out, lse, delta, dk, dv, *scalars, **common,
        )  # fmt: skip
        _backward_dq[lambda meta: _query_grid(meta, n_q, b * h)](
            q, k, v, bias_x, bias_y, pad, grad_out, lse, delta, dq, dbx, dby, *scalars, **common,
        )  # fmt: skip
        return dq, dk, dv, dbx, dby.to(bias_y.dtype), None, None


def boxrpb_attention(call: BoxRPBCall) -> torch.Tensor:
    q, k, v, bias_x, bias_y, key_padding_mask, scale = call
    return triton_common.apply_in_compute_dtype(
        _BoxRPBAttention, (q, k, v, bias_x, bias_y), key_padding_mask, scale
    )
