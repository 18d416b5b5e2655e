"""The reference backends against independent dense formulations, and float64 gradcheck."""

from __future__ import annotations

import torch
from tests_kernels_cases import brute_force_window, dense_attention, distinct_topk

import kernels
from kernels.boxrpb import reference as boxrpb_ref
from kernels.calls import BoxRPBCall, NeighborhoodCall, RoutingCall
from kernels.neighborhood import reference as neighborhood_ref
from kernels.routing import reference as routing_ref

torch.manual_seed(0)


def test_boxrpb_reference_adds_per_pixel_bias_and_official_padding_logit() -> None:
    b, h, n_q, height, width, d = 2, 2, 3, 3, 4, 8
    q, bx, by = torch.randn(b, h, n_q, d), torch.randn(b, h, n_q, width), torch.randn(b, h, n_q, height)
    k, v = torch.randn(b, h, height * width, d), torch.randn(b, h, height * width, d)
    pad = torch.rand(b, height * width) < 0.4
    bias = torch.empty(b, h, n_q, height * width)
    for y in range(height):
        for x in range(width):
            bias[..., y * width + x] = bx[..., x] + by[..., y] - 100.0 * pad[:, None, None, y * width + x]
    expected = dense_attention(q, k, v, d**-0.5, bias=bias)
    torch.testing.assert_close(
        boxrpb_ref.boxrpb_attention(BoxRPBCall(q, k, v, bx, by, pad, d**-0.5)), expected
    )


def test_routing_reference_equals_attention_masked_to_routed_regions() -> None:
    b, h, regions, t, topk, d = 2, 2, 5, 3, 2, 8
    q, k, v = (torch.randn(b, h, regions * t, d) for _ in range(3))
    index = distinct_topk(b, regions, topk)
    routed = torch.zeros(b, regions, regions, dtype=torch.bool).scatter_(2, index, True)
    allowed = routed.repeat_interleave(t, 1).repeat_interleave(t, 2)[:, None]  # [B, 1, N, N]
    expected = dense_attention(q, k, v, d**-0.5, allowed=allowed)
    torch.testing.assert_close(
        routing_ref.routed_attention(RoutingCall(q, k, v, index, t, d**-0.5)), expected
    )


def test_neighborhood_reference_equals_attention_masked_to_windows() -> None:
    b, h, height, width, d, kernel, dilation = 1, 2, 7, 9, 8, (3, 5), (2, 1)
    q, k, v = (torch.randn(b, h, height, width, d) for _ in range(3))
    allowed = brute_force_window(height, width, kernel, dilation)
    flat = [t.reshape(b, h, height * width, d) for t in (q, k, v)]
    expected = dense_attention(*flat, d**-0.5, allowed=allowed).reshape(q.shape)
    torch.testing.assert_close(
        neighborhood_ref.neighborhood_attention_2d(NeighborhoodCall(q, k, v, kernel, dilation, d**-0.5)),
        expected,
    )


def _double(*shapes: tuple[int, ...]) -> list[torch.Tensor]:
    return [torch.randn(*s, dtype=torch.float64, requires_grad=True) for s in shapes]


def test_boxrpb_reference_gradcheck_float64() -> None:
    q, k, v, bx, by = _double((1, 2, 3, 4), (1, 2, 6, 4), (1, 2, 6, 4), (1, 2, 3, 3), (1, 2, 3, 2))
    pad = torch.tensor([[False, True, False, False, False, True]])
    fn = lambda *t: kernels.boxrpb_attention(*t, key_padding_mask=pad, backend="reference")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k, v, bx, by))


def test_routing_reference_gradcheck_float64() -> None:
    q, k, v = _double((1, 2, 8, 4), (1, 2, 8, 4), (1, 2, 8, 4))
    index = torch.tensor([[[0, 3], [1, 2], [2, 0], [3, 1]]])
    assert torch.autograd.gradcheck(
        lambda *t: kernels.routed_attention(*t, index, 2, backend="reference"), (q, k, v)
    )


def test_neighborhood_reference_gradcheck_float64() -> None:
    q, k, v = _double((1, 1, 5, 6, 3), (1, 1, 5, 6, 3), (1, 1, 5, 6, 3))
    fn = lambda *t: kernels.neighborhood_attention_2d(*t, 3, (1, 2), backend="reference")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k, v))
