"""2-D neighborhood attention on FlexAttention: NATTEN's window rule as a ``mask_mod`` over flattened pixels.

The BlockMask depends only on the map size, kernel, dilation and device, so it is built once per such key.
"""

from __future__ import annotations

import functools

import torch
from torch.nn.attention.flex_attention import BlockMask, create_block_mask

from kernels.calls import NeighborhoodCall
from kernels.flex_common import flex
from kernels.neighborhood.window import window_start


@functools.lru_cache(maxsize=16)
def window_block_mask(
    height: int, width: int, kernel_size: tuple[int, int], dilation: tuple[int, int], device: torch.device
) -> BlockMask:
    (kh, kw), (dh, dw) = kernel_size, dilation
    row_start = window_start(torch.arange(height, device=device), height, kh, dh)
    col_start = window_start(torch.arange(width, device=device), width, kw, dw)

    def mask_mod(batch, head, q_idx, kv_idx):
        dy = kv_idx // width - row_start[q_idx // width]
        dx = kv_idx % width - col_start[q_idx % width]
        in_rows = (dy >= 0) & (dy <= (kh - 1) * dh) & (dy % dh == 0)
        in_cols = (dx >= 0) & (dx <= (kw - 1) * dw) & (dx % dw == 0)
        return in_rows & in_cols

    n = height * width
    return create_block_mask(mask_mod, None, None, n, n, device=device, _compile=True)


def neighborhood_attention_2d(call: NeighborhoodCall) -> torch.Tensor:
    q, k, v, kernel_size, dilation, scale = call
    b, h, height, width, d = q.shape
    n = height * width
    block_mask = window_block_mask(height, width, tuple(kernel_size), tuple(dilation), q.device)
    out = flex(
        q.reshape(b, h, n, d), k.reshape(b, h, n, d), v.reshape(b, h, n, d), scale, block_mask=block_mask
    )
    return out.reshape(b, h, height, width, d)
