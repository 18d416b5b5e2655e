"""2-D neighborhood attention computed the unfused way (the ground truth of the other backends).

Follows NATTEN's reference path (SHI-Labs/NATTEN ``na2d``: logits ``q·k * scale`` over each query's
``kh x kw`` (dilated) window with borders clamped, softmax over the window, weighted sum of the window's values)
by gathering each query's window into a ``[B, h, H, W, kh*kw, d]`` copy of K and V.
"""

from __future__ import annotations

import torch

from kernels.calls import NeighborhoodCall
from kernels.neighborhood.window import neighbor_index


def neighborhood_attention_2d(call: NeighborhoodCall) -> torch.Tensor:
    q, k, v, kernel_size, dilation, scale = call
    b, h, height, width, d = q.shape
    rows = neighbor_index(height, kernel_size[0], dilation[0], q.device)  # [H, kh]
    cols = neighbor_index(width, kernel_size[1], dilation[1], q.device)  # [W, kw]
    flat = (rows[:, None, :, None] * width + cols[None, :, None, :]).reshape(
        height * width, -1
    )  # [HW, kh*kw]
    k_win = k.reshape(b, h, height * width, d)[:, :, flat]  # [B, h, HW, kh*kw, d]
    v_win = v.reshape(b, h, height * width, d)[:, :, flat]
    q_flat = q.reshape(b, h, height * width, 1, d)
    attn = ((q_flat * scale) @ k_win.transpose(-2, -1)).softmax(dim=-1)  # [B, h, HW, 1, kh*kw]
    return (attn @ v_win).reshape(b, h, height, width, d)
