"""2-D neighborhood attention as fused Triton kernels (forward and backward).

A program takes a ``TILE_H x TILE_W`` patch of queries and walks, in ``KEY_ROWS x KEY_COLS`` key tiles, the
bounding box of its queries' windows (NATTEN's clamped, dilated windows, ``kernels/neighborhood/window.py``),
masking each (query, key) pair to the query's own window. Backward: ``dq`` is owned by the program,
``dk``/``dv`` (shared by overlapping windows of neighboring patches) are accumulated with fp32 atomics.
Tiles, warps and stages are autotuned per kernel size, dilation and head dim.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels import triton_common
from kernels.calls import NeighborhoodCall
from kernels.triton_common import LOG2E, load_backward_rows, online_softmax_step

# (tiles, num_warps, num_stages); the first is the interpreter's. Query patch TILE_H x TILE_W, key tile
# KEY_ROWS x KEY_COLS; both products are powers of two >= 16 (tl.dot).
_FORWARD = [
    ({"TILE_H": 8, "TILE_W": 8, "KEY_ROWS": 4, "KEY_COLS": 16}, 4, 2),
    ({"TILE_H": 8, "TILE_W": 16, "KEY_ROWS": 4, "KEY_COLS": 16}, 4, 2),
    ({"TILE_H": 16, "TILE_W": 8, "KEY_ROWS": 8, "KEY_COLS": 8}, 4, 2),
    ({"TILE_H": 8, "TILE_W": 16, "KEY_ROWS": 2, "KEY_COLS": 32}, 4, 3),
    ({"TILE_H": 16, "TILE_W": 16, "KEY_ROWS": 4, "KEY_COLS": 32}, 8, 2),
]  # fmt: skip
_BACKWARD = [
    ({"TILE_H": 8, "TILE_W": 8, "KEY_ROWS": 4, "KEY_COLS": 16}, 4, 2),
    ({"TILE_H": 8, "TILE_W": 8, "KEY_ROWS": 2, "KEY_COLS": 16}, 4, 2),
    ({"TILE_H": 8, "TILE_W": 16, "KEY_ROWS": 4, "KEY_COLS": 16}, 8, 2),
    ({"TILE_H": 4, "TILE_W": 8, "KEY_ROWS": 4, "KEY_COLS": 8}, 4, 2),
]  # fmt: skip
# Each kernel's candidates (the tests run every one under the interpreter).
TUNING = {"_forward": _FORWARD, "_backward": _BACKWARD}
_KEY = ["kh", "kw", "dh", "dw", "BLOCK_D"]


@triton.jit
def _window_start(pos, length, kernel, dilation):
    """NATTEN's clamped window start (closed form, see kernels/neighborhood/window.py)."""
    residue = pos % dilation
    members = (length - residue + dilation - 1) // dilation
    first = tl.minimum(tl.maximum(pos // dilation - kernel // 2, 0), members - kernel)
    return first * dilation + residue


@triton.jit
def _query_tile(height, width, head_dim, kh, kw, dh, dw,
                TILE_H: tl.constexpr, TILE_W: tl.constexpr, BLOCK_D: tl.constexpr):  # fmt: skip
    """This program's batch x head, token count and the head's offset; the flattened query rows of its patch,
    their validity and their windows' first row/column; the head-dim lanes and their mask."""
    bh = tl.program_id(1)
    n = height * width
    offs_d = tl.arange(0, BLOCK_D)
    tiles_w = tl.cdiv(width, TILE_W)
    r = tl.arange(0, TILE_H * TILE_W)
    qy = (tl.program_id(0) // tiles_w) * TILE_H + r // TILE_W
    qx = (tl.program_id(0) % tiles_w) * TILE_W + r % TILE_W
    q_ok = (qy < height) & (qx < width)
    start_y = _window_start(tl.minimum(qy, height - 1), height, kh, dh)
    start_x = _window_start(tl.minimum(qx, width - 1), width, kw, dw)
    return bh, n, bh * n * head_dim, qy * width + qx, q_ok, start_y, start_x, offs_d, offs_d < head_dim


@triton.jit
def _key_tile(K, V, ky0, kx0, start_y, start_x, height, width, kh, kw, dh, dw, base, offs_d, d_ok, head_dim,
              KEY_ROWS: tl.constexpr, KEY_COLS: tl.constexpr):  # fmt: skip
    """One key tile: which (query, key) pairs are neighbors, the keys' offsets and mask, and ``k`` and ``v``."""
    c = tl.arange(0, KEY_ROWS * KEY_COLS)
    ky = ky0 + c // KEY_COLS
    kx = kx0 + c % KEY_COLS
    k_ok = (ky < height) & (kx < width)
    dy = ky[None, :] - start_y[:, None]
    dx = kx[None, :] - start_x[:, None]
    in_window = (dy >= 0) & (dy <= (kh - 1) * dh) & (dy % dh == 0)
    in_window &= (dx >= 0) & (dx <= (kw - 1) * dw) & (dx % dw == 0)
    kv_offsets = base + (ky * width + kx)[:, None] * head_dim + offs_d[None, :]
    kv_mask = k_ok[:, None] & d_ok[None, :]
    k = tl.load(K + kv_offsets, mask=kv_mask, other=0.0)
    v = tl.load(V + kv_offsets, mask=kv_mask, other=0.0)
    return in_window & k_ok[None, :], kv_offsets, kv_mask, k, v


@triton.autotune(triton_common.tuning_configs(_FORWARD), key=_KEY, cache_results=True)
@triton.jit
def _forward(
    Q, K, V, OUT, LSE,
    height, width, head_dim, kh, kw, dh, dw, scale,
    PRECISION: tl.constexpr, TILE_H: tl.constexpr, TILE_W: tl.constexpr,
    KEY_ROWS: tl.constexpr, KEY_COLS: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    bh, n, base, rows, q_ok, start_y, start_x, offs_d, d_ok = _query_tile(
        height, width, head_dim, kh, kw, dh, dw, TILE_H, TILE_W, BLOCK_D
    )
    row_mask = q_ok[:, None] & d_ok[None, :]
    q = tl.load(Q + base + rows[:, None] * head_dim + offs_d[None, :], mask=row_mask, other=0.0)

    m_i = tl.full([TILE_H * TILE_W], float("-inf"), tl.float32)
    l_i = tl.zeros([TILE_H * TILE_W], tl.float32)
    acc = tl.zeros([TILE_H * TILE_W, BLOCK_D], tl.float32)
    for ky0 in range(tl.min(start_y, 0), tl.max(start_y, 0) + (kh - 1) * dh + 1, KEY_ROWS):
        for kx0 in range(tl.min(start_x, 0), tl.max(start_x, 0) + (kw - 1) * dw + 1, KEY_COLS):
            allowed, _, _, k, v = _key_tile(K, V, ky0, kx0, start_y, start_x, height, width, kh, kw, dh, dw, base,
                                            offs_d, d_ok, head_dim, KEY_ROWS, KEY_COLS)  # fmt: skip
            s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * (scale * LOG2E)
            s = tl.where(allowed, s, float("-inf"))
            m_i, l_i, acc = online_softmax_step(s, v, m_i, l_i, acc, PRECISION)  # a tile may hold no neighbor
    l_safe = tl.where(q_ok, l_i, 1.0)
    tl.store(OUT + base + rows[:, None] * head_dim + offs_d[None, :], (acc / l_safe[:, None]).to(OUT.dtype.element_ty),
             mask=row_mask)  # fmt: skip
    tl.store(LSE + bh * n + rows, m_i + tl.log2(l_safe), mask=q_ok)


@triton.autotune(
    triton_common.tuning_configs(_BACKWARD), key=_KEY, reset_to_zero=["DK", "DV"], cache_results=True
)
@triton.jit
def _backward(
    Q, K, V, DO, LSE, DELTA, DQ, DK, DV,
    height, width, head_dim, kh, kw, dh, dw, scale,
    PRECISION: tl.constexpr, TILE_H: tl.constexpr, TILE_W: tl.constexpr,
    KEY_ROWS: tl.constexpr, KEY_COLS: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    bh, n, base, rows, q_ok, start_y, start_x, offs_d, d_ok = _query_tile(
        height, width, head_dim, kh, kw, dh, dw, TILE_H, TILE_W, BLOCK_D
    )
    q_offsets, row_mask, q, do, lse, delta = load_backward_rows(
        Q, DO, LSE, DELTA, rows, q_ok, offs_d, d_ok, head_dim, base, bh * n
    )

    dq = tl.zeros([TILE_H * TILE_W, BLOCK_D], tl.float32)
    for ky0 in range(tl.min(start_y, 0), tl.max(start_y, 0) + (kh - 1) * dh + 1, KEY_ROWS):
        for kx0 in range(tl.min(start_x, 0), tl.max(start_x, 0) + (kw - 1) * dw + 1, KEY_COLS):
            allowed, kv_offsets, kv_mask, k, v = _key_tile(K, V, ky0, kx0, start_y, start_x, height, width, kh, kw,
                                                           dh, dw, base, offs_d, d_ok, head_dim, KEY_ROWS,
                                                           KEY_COLS)  # fmt: skip
            s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * (scale * LOG2E)
            p = tl.exp2(tl.where(allowed & q_ok[:, None], s, float("-inf")) - lse[:, None])
            dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
            ds = (p * (dp - delta[:, None])).to(q.dtype)
            dq += tl.dot(ds, k, input_precision=PRECISION)
            tl.atomic_add(DK + kv_offsets, tl.dot(tl.trans(ds), q, input_precision=PRECISION) * scale,
                          mask=kv_mask)  # fmt: skip
            tl.atomic_add(DV + kv_offsets, tl.dot(tl.trans(p.to(do.dtype)), do, input_precision=PRECISION),
                          mask=kv_mask)  # fmt: skip
    tl.store(DQ + q_offsets, (dq * scale).to(DQ.dtype.element_ty), mask=row_mask)


def _grid(q: torch.Tensor):
    b, h, height, width, _ = q.shape
    return lambda meta: (triton.cdiv(height, meta["TILE_H"]) * triton.cdiv(width, meta["TILE_W"]), b * h)


class _NeighborhoodAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, kernel_size, dilation, scale):
        b, h, height, width, d = q.shape
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        out = torch.empty_like(q)
        lse = torch.empty(b, h, height * width, device=q.device, dtype=torch.float32)
        _forward[_grid(q)](
            q, k, v, out, lse, height, width, d, *kernel_size, *dilation, scale,
            PRECISION=triton_common.dot_precision(q.dtype), BLOCK_D=triton_common.block_for(d, high=256),
        )  # fmt: skip
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.kernel_size, ctx.dilation, ctx.scale = kernel_size, dilation, scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, out, lse = ctx.saved_tensors
        _, _, height, width, d = q.shape
        grad_out, delta = triton_common.backward_inputs(grad_out, out)
        dq = torch.empty_like(q)  # owned by one program; dk/dv are accumulated by overlapping windows
        dk = torch.zeros(k.shape, device=q.device, dtype=torch.float32)
        dv = torch.zeros(v.shape, device=q.device, dtype=torch.float32)
        _backward[_grid(q)](
            q, k, v, grad_out, lse, delta, dq, dk, dv, height, width, d, *ctx.kernel_size, *ctx.dilation,
            ctx.scale, PRECISION=triton_common.dot_precision(q.dtype), BLOCK_D=triton_common.block_for(d, high=256),
        )  # fmt: skip
        return dq, dk.to(k.dtype), dv.to(v.dtype), None, None, None


def neighborhood_attention_2d(call: NeighborhoodCall) -> torch.Tensor:
    q, k, v, kernel_size, dilation, scale = call
    return triton_common.apply_in_compute_dtype(
        _NeighborhoodAttention, (q, k, v), kernel_size, dilation, scale
    )
