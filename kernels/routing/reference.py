"""Bi-level routing attention as the official BiFormer computes it (the ground truth of the other backends).

rayleizhu/BiFormer, ``ops/bra_legacy.py``: ``KVGather`` copies each query region's top-k key/value regions
(``torch.gather`` over an expanded view, the top-k-fold copy its FIXME mentions), then plain multi-head
attention of each region's tokens over the ``k * T`` gathered tokens (``BiLevelRoutingAttention.forward``,
``attn_weight = (q_pix * scale) @ k_pix_sel``, softmax, ``@ v_pix_sel``). Routing (``TopkRouting``) is done by
the caller, which passes ``topk_index``.
"""

from __future__ import annotations

import torch

from kernels.calls import RoutingCall


def _gather_regions(x: torch.Tensor, topk_index: torch.Tensor) -> torch.Tensor:
    """[B, h, R, T, d] and [B, R, k] -> [B, h, R, k*T, d], copying each routed region (as KVGather does)."""
    b, h, r, t, d = x.shape
    k = topk_index.shape[-1]
    index = topk_index.long()[:, None, :, :, None, None].expand(b, h, r, k, t, d)
    gathered = torch.gather(x[:, :, None].expand(b, h, r, r, t, d), dim=3, index=index)
    return gathered.reshape(b, h, r, k * t, d)


def routed_attention(call: RoutingCall) -> torch.Tensor:
    q, k, v, topk_index, region_size, scale = call
    b, h, n, d = q.shape
    regions = n // region_size
    q_r = q.reshape(b, h, regions, region_size, d)
    k_sel = _gather_regions(k.reshape(b, h, regions, region_size, d), topk_index)
    v_sel = _gather_regions(v.reshape(b, h, regions, region_size, d), topk_index)
    attn = ((q_r * scale) @ k_sel.transpose(-2, -1)).softmax(dim=-1)
    return (attn @ v_sel).reshape(b, h, n, d)
