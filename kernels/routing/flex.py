"""Routing attention on FlexAttention: a BlockMask built from the routed (query region, key region) pairs.

The ``mask_mod`` encodes the routing itself (eager FlexAttention ignores block sparsity), and the block mask
lets the compiled kernel skip key blocks that no query of a query block routes to.
"""

from __future__ import annotations

import torch
from torch.nn.attention.flex_attention import create_block_mask

from kernels.flex_common import flex


def routed_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    topk_index: torch.Tensor,
    region_size: int,
    scale: float,
) -> torch.Tensor:
    b, _, n, _ = q.shape
    regions = n // region_size
    routed = torch.zeros(b, regions, regions, dtype=torch.bool, device=q.device)
    routed.scatter_(2, topk_index, True)  # routed[b, query region, key region]

    def mask_mod(batch, head, q_idx, kv_idx):
        return routed[batch, q_idx // region_size, kv_idx // region_size]

    block_mask = create_block_mask(mask_mod, b, None, n, n, device=q.device, _compile=True)
    return flex(q, k, v, scale, block_mask=block_mask)
