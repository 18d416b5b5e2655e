"""BoxRPB cross-attention as fused Triton kernels (forward and backward), flash-attention style.

The bias of query q at key n = y*W + x is ``bias_x[q, x] + bias_y[q, y]``, looked up per tile from the two
small per-axis tables, so no ``Q x H*W`` tensor exists. Forward: online softmax over key tiles, saving the
row log-sum-exp. Backward: one program per query tile walks the keys image-column-chunk by image row, so that
``d bias_x`` (a sum over rows) accumulates in registers and ``d bias_y`` (a sum over columns) is a row sum per
tile; ``dq`` is owned by the program, ``dk``/``dv`` are accumulated with fp32 atomics.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.boxrpb.reference import PADDING_LOGIT
from kernels.triton_common import LOG2E, block_for, compute_dtype, dot_precision

BLOCK_M = 64
BLOCK_N = 64


@triton.jit
def _forward(
    Q, K, V, BX, BY, PAD, OUT, LSE,
    n_q, height, width, head_dim, heads, scale,
    HAS_PAD: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    bh = tl.program_id(1)
    n_k = height * width
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_ok = offs_m < n_q
    d_ok = offs_d < head_dim
    q = tl.load(Q + bh * n_q * head_dim + offs_m[:, None] * head_dim + offs_d[None, :],
                mask=m_ok[:, None] & d_ok[None, :], other=0.0)  # fmt: skip
    k_base = K + bh * n_k * head_dim
    v_base = V + bh * n_k * head_dim
    bx_rows = BX + bh * n_q * width + offs_m[:, None] * width
    by_rows = BY + bh * n_q * height + offs_m[:, None] * height

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for start in range(0, n_k, BLOCK_N):
        offs_n = start + tl.arange(0, BLOCK_N)
        n_ok = offs_n < n_k
        kv_mask = n_ok[:, None] & d_ok[None, :]
        k = tl.load(k_base + offs_n[:, None] * head_dim + offs_d[None, :], mask=kv_mask, other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale
        tile_mask = m_ok[:, None] & n_ok[None, :]
        s += tl.load(bx_rows + (offs_n % width)[None, :], mask=tile_mask, other=0.0).to(tl.float32)
        s += tl.load(by_rows + (offs_n // width)[None, :], mask=tile_mask, other=0.0).to(tl.float32)
        if HAS_PAD:
            s += tl.load(PAD + (bh // heads) * n_k + offs_n, mask=n_ok, other=0.0)[None, :]
        s = tl.where(n_ok[None, :], s * LOG2E, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_base + offs_n[:, None] * head_dim + offs_d[None, :], mask=kv_mask, other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
        m_i = m_new
    acc = acc / l_i[:, None]
    tl.store(OUT + bh * n_q * head_dim + offs_m[:, None] * head_dim + offs_d[None, :],
             acc.to(OUT.dtype.element_ty), mask=m_ok[:, None] & d_ok[None, :])  # fmt: skip
    tl.store(LSE + bh * n_q + offs_m, m_i + tl.log2(l_i), mask=m_ok)


@triton.jit
def _backward(
    Q, K, V, BX, BY, PAD, DO, LSE, DELTA, DQ, DK, DV, DBX, DBY,
    n_q, height, width, head_dim, heads, scale,
    HAS_PAD: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_X: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    bh = tl.program_id(1)
    n_k = height * width
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_ok = offs_m < n_q
    d_ok = offs_d < head_dim
    row_mask = m_ok[:, None] & d_ok[None, :]
    q_offsets = bh * n_q * head_dim + offs_m[:, None] * head_dim + offs_d[None, :]
    q = tl.load(Q + q_offsets, mask=row_mask, other=0.0)
    do = tl.load(DO + q_offsets, mask=row_mask, other=0.0)
    lse = tl.load(LSE + bh * n_q + offs_m, mask=m_ok, other=0.0)
    delta = tl.load(DELTA + bh * n_q + offs_m, mask=m_ok, other=0.0)
    kv_base = bh * n_k * head_dim
    bx_rows = bh * n_q * width + offs_m[:, None] * width
    by_rows = bh * n_q * height + offs_m * height

    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for x0 in range(0, width, BLOCK_X):
        offs_x = x0 + tl.arange(0, BLOCK_X)
        x_ok = offs_x < width
        tile_mask = m_ok[:, None] & x_ok[None, :]
        bias_x = tl.load(BX + bx_rows + offs_x[None, :], mask=tile_mask, other=0.0).to(tl.float32)
        dbx = tl.zeros([BLOCK_M, BLOCK_X], tl.float32)
        for y in range(0, height):
            offs_n = y * width + offs_x
            kv_offsets = kv_base + offs_n[:, None] * head_dim + offs_d[None, :]
            kv_mask = x_ok[:, None] & d_ok[None, :]
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
            ds_in = ds.to(q.dtype)
            dq += tl.dot(ds_in, k, input_precision=PRECISION)
            tl.atomic_add(DK + kv_offsets, tl.dot(tl.trans(ds_in), q, input_precision=PRECISION) * scale,
                          mask=kv_mask)  # fmt: skip
            tl.atomic_add(DV + kv_offsets, tl.dot(tl.trans(p.to(do.dtype)), do, input_precision=PRECISION),
                          mask=kv_mask)  # fmt: skip
        tl.store(DBX + bx_rows + offs_x[None, :], dbx, mask=tile_mask)
    tl.store(DQ + q_offsets, dq * scale, mask=row_mask)


def _padding_logits(key_padding_mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    if key_padding_mask is None:
        return like.new_empty(0, dtype=torch.float32)
    return key_padding_mask.to(torch.float32) * PADDING_LOGIT


class _BoxRPBAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bias_x, bias_y, key_padding_mask, scale):
        b, h, n_q, d = q.shape
        height, width = bias_y.shape[-1], bias_x.shape[-1]
        q, k, v, bias_x, bias_y = (t.contiguous() for t in (q, k, v, bias_x, bias_y))
        pad = _padding_logits(key_padding_mask, q)
        out = torch.empty_like(q)
        lse = torch.empty(b, h, n_q, device=q.device, dtype=torch.float32)
        block_d = block_for(d, high=256)
        grid = (triton.cdiv(n_q, BLOCK_M), b * h)
        _forward[grid](
            q, k, v, bias_x, bias_y, pad, out, lse, n_q, height, width, d, h, scale,
            HAS_PAD=key_padding_mask is not None, PRECISION=dot_precision(q.dtype),
            BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_D=block_d,
        )  # fmt: skip
        ctx.save_for_backward(q, k, v, bias_x, bias_y, pad, out, lse)
        ctx.has_pad = key_padding_mask is not None
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, bias_x, bias_y, pad, out, lse = ctx.saved_tensors
        b, h, n_q, d = q.shape
        height, width = bias_y.shape[-1], bias_x.shape[-1]
        grad_out = grad_out.contiguous().to(q.dtype)
        delta = (grad_out.float() * out.float()).sum(-1)
        dq = torch.empty(q.shape, device=q.device, dtype=torch.float32)
        dk = torch.zeros(k.shape, device=q.device, dtype=torch.float32)
        dv = torch.zeros(v.shape, device=q.device, dtype=torch.float32)
        dbx = torch.empty(bias_x.shape, device=q.device, dtype=torch.float32)
        dby = torch.zeros(bias_y.shape, device=q.device, dtype=torch.float32)
        grid = (triton.cdiv(n_q, BLOCK_M), b * h)
        _backward[grid](
            q, k, v, bias_x, bias_y, pad, grad_out, lse, delta, dq, dk, dv, dbx, dby,
            n_q, height, width, d, h, ctx.scale,
            HAS_PAD=ctx.has_pad, PRECISION=dot_precision(q.dtype),
            BLOCK_M=BLOCK_M, BLOCK_X=block_for(width), BLOCK_D=block_for(d, high=256),
        )  # fmt: skip
        grads = (dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), dbx.to(bias_x.dtype), dby.to(bias_y.dtype))
        return (*grads, None, None)


def boxrpb_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias_x: torch.Tensor,
    bias_y: torch.Tensor,
    key_padding_mask: torch.Tensor | None,
    scale: float,
) -> torch.Tensor:
    run_dtype = compute_dtype(q.dtype)
    inputs = (t.to(run_dtype) for t in (q, k, v, bias_x, bias_y))
    return _BoxRPBAttention.apply(*inputs, key_padding_mask, scale).to(q.dtype)
