"""Routing attention on FlexAttention: a BlockMask built from the routed (query region, key region) pairs.

The ``mask_mod`` encodes the routing itself (eager FlexAttention ignores block sparsity), and the block mask
lets the compiled kernel skip key blocks that no query of a query block routes to. The block mask is computed
from the ``[B, R, R]`` region pairs (two small matmuls counting allowed token pairs per block pair), not by
evaluating ``mask_mod`` on every token pair as ``create_block_mask`` does, and cached per index tensor.
"""

from __future__ import annotations

import torch
from torch.nn.attention.flex_attention import BlockMask

from kernels.calls import RoutingCall
from kernels.flex_common import IndexedCache, flex

BLOCK = 128  # FlexAttention's default sparse block size
_MASKS = IndexedCache()


def _ordered(dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, QB, KB]`` bool -> per query block the count and the indices (listed first) of its key blocks."""
    counts = dense.sum(-1, dtype=torch.int32)
    indices = torch.argsort(dense.to(torch.int32), dim=-1, descending=True, stable=True).to(torch.int32)
    return counts[:, None].contiguous(), indices[:, None].contiguous()


def routed_block_mask(topk_index: torch.Tensor, n: int, region_size: int) -> BlockMask:
    """The BlockMask ``create_block_mask`` would build for the routing ``mask_mod`` (same partial/full split)."""
    b, regions, _ = topk_index.shape
    device = topk_index.device
    routed = torch.zeros(b, regions, regions, dtype=torch.bool, device=device)
    routed.scatter_(2, topk_index.long(), True)  # routed[b, query region, key region]

    def mask_mod(batch, head, q_idx, kv_idx):
        return routed[batch, q_idx // region_size, kv_idx // region_size]

    # overlap[r, j]: tokens of region r inside block j; float64 keeps the pair counts exact (TF32 would not).
    first = torch.arange(regions, device=device, dtype=torch.float64) * region_size
    block_first = torch.arange(-(-n // BLOCK), device=device, dtype=torch.float64) * BLOCK
    overlap = (
        torch.minimum(first[:, None] + region_size, block_first[None, :] + BLOCK)
        - torch.maximum(first[:, None], block_first[None, :])
    ).clamp(min=0)
    pairs = overlap.T @ routed.to(torch.float64) @ overlap  # [B, QB, KB] allowed token pairs per block pair
    full = pairs == BLOCK * BLOCK  # as create_block_mask: a block cut by the sequence end is never full
    partial = (pairs > 0) & ~full
    return BlockMask.from_kv_blocks(
        *_ordered(partial), *_ordered(full), BLOCK_SIZE=BLOCK, mask_mod=mask_mod, seq_lengths=(n, n)
    )


def block_mask_for(topk_index: torch.Tensor, n: int, region_size: int) -> BlockMask:
    """``routed_block_mask``, cached per index tensor (identity and version) and token layout."""
    return _MASKS.get(topk_index, (n, region_size), lambda: routed_block_mask(topk_index, n, region_size))


def routed_attention(call: RoutingCall) -> torch.Tensor:
    q, k, v, topk_index, region_size, scale = call
    n = q.shape[2]
    block_mask = _MASKS.get(
        topk_index, (n, region_size), lambda: routed_block_mask(topk_index, n, region_size)
    )
    return flex(q, k, v, scale, block_mask=block_mask)
