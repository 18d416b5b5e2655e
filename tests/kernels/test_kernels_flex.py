"""FlexAttention backend on CPU: the compiled forward (no backward exists on CPU) against ``reference``.

Slow: each op compiles once (about 5-40 s on 2 cores). Training through flex is tested on CUDA in
test_kernels_fused.py (``backend=flex`` cases, gpu-marked).
"""

from __future__ import annotations

import pytest
import torch
from test_kernels_memory import largest_allocation
from tests_kernels_cases import distinct_topk

import kernels
from kernels.neighborhood.flex import window_block_mask

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(torch.cuda.is_available(), reason="CPU compiled forward; CUDA runs the fused tests"),
]
TOL = {"atol": 2e-5, "rtol": 1e-4}


@torch.no_grad()
def test_boxrpb_flex_forward_matches_reference_without_the_bias_tensor() -> None:
    b, h, n_q, height, width, d = 1, 2, 48, 12, 13, 8
    shapes = [(b, h, n_q, d), (b, h, height * width, d), (b, h, height * width, d), (b, h, n_q, width),
              (b, h, n_q, height)]  # fmt: skip
    inputs = [torch.randn(*s) for s in shapes]
    mask = torch.rand(b, height * width) < 0.3
    out = kernels.boxrpb_attention(*inputs, key_padding_mask=mask, backend="flex")
    torch.testing.assert_close(out, kernels.boxrpb_attention(*inputs, key_padding_mask=mask, backend="reference"),
                               **TOL)  # fmt: skip
    bias_bytes = b * h * n_q * height * width * 4
    assert largest_allocation(
        lambda: kernels.boxrpb_attention(*inputs, key_padding_mask=mask, backend="flex")
    ) < (bias_bytes // 2)


@torch.no_grad()
def test_routing_flex_forward_matches_reference() -> None:
    q, k, v = (torch.randn(2, 2, 6 * 5, 8) for _ in range(3))
    index = distinct_topk(2, 6, 2)
    out = kernels.routed_attention(q, k, v, index, 5, backend="flex")
    torch.testing.assert_close(out, kernels.routed_attention(q, k, v, index, 5, backend="reference"), **TOL)


@torch.no_grad()
def test_routing_flex_follows_an_index_changed_in_place() -> None:
    """The cached BlockMask is rebuilt when the index tensor changes (same shapes as above: no recompile)."""
    q, k, v = (torch.randn(2, 2, 6 * 5, 8) for _ in range(3))
    index = distinct_topk(2, 6, 2)
    kernels.routed_attention(q, k, v, index, 5, backend="flex")
    index[:, :, 0] = (index[:, :, 0] + 1) % 6
    index[:, :, 1] = (index[:, :, 0] + 1) % 6  # still two distinct regions per row
    out = kernels.routed_attention(q, k, v, index, 5, backend="flex")
    torch.testing.assert_close(out, kernels.routed_attention(q, k, v, index, 5, backend="reference"), **TOL)


@torch.no_grad()
def test_neighborhood_flex_forward_matches_reference() -> None:
    q, k, v = (torch.randn(1, 2, 9, 11, 8) for _ in range(3))
    out = kernels.neighborhood_attention_2d(q, k, v, (3, 5), (2, 1), backend="flex")
    expected = kernels.neighborhood_attention_2d(q, k, v, (3, 5), (2, 1), backend="reference")
    torch.testing.assert_close(out, expected, **TOL)


@torch.no_grad()
def test_neighborhood_flex_builds_its_block_mask_once_per_shape() -> None:
    """Same shapes as above (no recompile): the second call finds the BlockMask cached."""
    q, k, v = (torch.randn(1, 2, 9, 11, 8) for _ in range(3))
    kernels.neighborhood_attention_2d(q, k, v, (3, 5), (2, 1), backend="flex")
    hits = window_block_mask.cache_info().hits
    again = kernels.neighborhood_attention_2d(q, k, v, (3, 5), (2, 1), backend="flex")
    assert window_block_mask.cache_info().hits == hits + 1
    expected = kernels.neighborhood_attention_2d(q, k, v, (3, 5), (2, 1), backend="reference")
    torch.testing.assert_close(again, expected, **TOL)
