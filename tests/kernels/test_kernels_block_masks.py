"""The routing flex backend's BlockMask: built from region pairs it equals ``create_block_mask``'s, and its cache
hands back a mask only while the index tensor is unchanged (changed in place, it gets a new one). The cached
neighborhood mask and flex results after an index change: test_kernels_flex.py (they compile)."""

from __future__ import annotations

import pytest
import torch
from tests_kernels_cases import distinct_topk
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, create_mask

from kernels.routing.flex import block_mask_for, routed_block_mask


def _reference_mask(topk_index: torch.Tensor, region_size: int) -> BlockMask:
    b, regions, _ = topk_index.shape
    routed = torch.zeros(b, regions, regions, dtype=torch.bool, device=topk_index.device)
    routed.scatter_(2, topk_index, True)
    n = regions * region_size

    def mask_mod(batch, head, q_idx, kv_idx):
        return routed[batch, q_idx // region_size, kv_idx // region_size]

    return create_block_mask(mask_mod, b, None, n, n, device=topk_index.device)


def _tokens(mask: BlockMask) -> torch.Tensor:
    """The token-level ``[B, 1, Q, KV]`` pattern of a BlockMask's ``mask_mod``."""
    b, _, n_q, n_k = mask.shape
    return create_mask(mask.mask_mod, b, 1, n_q, n_k, device=mask.kv_num_blocks.device)


def _same(a: BlockMask, b: BlockMask) -> bool:
    """Same blocks (partial and full, both directions) and the same token pattern."""
    counts = ("kv_num_blocks", "full_kv_num_blocks", "q_num_blocks", "full_q_num_blocks")
    return (
        torch.equal(a.to_dense(), b.to_dense())
        and all(torch.equal(getattr(a, name), getattr(b, name)) for name in counts)
        and torch.equal(_tokens(a), _tokens(b))
    )


@pytest.mark.parametrize(
    ("batch", "regions", "region_size", "topk"),
    [(2, 6, 5, 2), (1, 49, 16, 4), (2, 49, 4, 16), (1, 4, 70, 3), (1, 3, 128, 1)],  # last: full blocks
)
def test_routed_block_mask_equals_create_block_mask(
    batch: int, regions: int, region_size: int, topk: int, device: torch.device
) -> None:
    index = distinct_topk(batch, regions, topk, device)
    mask = routed_block_mask(index, regions * region_size, region_size)
    assert _same(mask, _reference_mask(index, region_size))


def test_routing_mask_cache_follows_the_index_tensor(device: torch.device) -> None:
    index = distinct_topk(2, 6, 2, device)
    first = block_mask_for(index, 30, 5)
    assert block_mask_for(index, 30, 5) is first  # unchanged tensor: cached
    assert block_mask_for(index, 60, 10) is not first  # another token layout
    index[0, 0] = torch.tensor([5, 4])  # in place: a new version
    changed = block_mask_for(index, 30, 5)
    assert changed is not first and _same(changed, _reference_mask(index, 5))
    assert not torch.equal(_tokens(changed), _tokens(first))
    copy = index.clone()
    assert block_mask_for(copy, 30, 5) is not changed  # another tensor, even with equal values
    with torch.inference_mode():  # no version counter: never cached, still right
        frozen = distinct_topk(2, 6, 2, device)
        assert block_mask_for(frozen, 30, 5) is not block_mask_for(frozen, 30, 5)
        assert _same(block_mask_for(frozen, 30, 5), _reference_mask(frozen, 5))
