"""Every fused backend against ``reference``: forward and all gradients, at odd sizes.

Tolerances (max elementwise, ``atol + rtol * |reference|``), the reference being fp32 math on the same
(rounded) inputs: fp32 atol 2e-5 / rtol 1e-4 (fp32 products, online softmax reorders sums); fp16 forward
5e-3 / 5e-3 and gradients 1e-2 / 1e-2 (fp16 tile products, fp32 accumulation); bf16 4e-2 / 4e-2.
Without CUDA the Triton kernels run in Triton's interpreter (see conftest.py); ``flex`` needs CUDA to train
(its CPU forward is in test_kernels_flex.py).
"""

from __future__ import annotations

import pytest
import torch
from tests_kernels_cases import distinct_topk, randn

import kernels

FORWARD_TOL = {
    torch.float32: {"atol": 2e-5, "rtol": 1e-4},
    torch.float16: {"atol": 5e-3, "rtol": 5e-3},
    torch.bfloat16: {"atol": 4e-2, "rtol": 4e-2},
}
GRAD_TOL = {**FORWARD_TOL, torch.float16: {"atol": 1e-2, "rtol": 1e-2}}
BACKENDS = ["triton"]  # flex trains on CUDA only: test_flex_trains_on_cuda below (each case compiles)


def _check(op, inputs: list[torch.Tensor], backend: str, **kwargs) -> None:
    """Run ``op`` on ``backend`` and on ``reference`` (fp32), compare output and every input's gradient."""
    dtype = inputs[0].dtype
    fused_in = [t.detach().clone().requires_grad_() for t in inputs]
    ref_in = [t.detach().float().clone().requires_grad_() for t in inputs]
    out = op(*fused_in, backend=backend, **kwargs)
    expected = op(*ref_in, backend="reference", **kwargs)
    assert out.dtype == dtype and out.shape == expected.shape
    torch.testing.assert_close(out.float(), expected, **FORWARD_TOL[dtype])
    grad = randn(*out.shape, dtype=dtype, device=out.device, seed=99)
    out.backward(grad)
    expected.backward(grad.float())
    for i, (got, want) in enumerate(zip(fused_in, ref_in, strict=True)):
        assert got.grad is not None, f"no gradient for input {i}"
        torch.testing.assert_close(
            got.grad.float(), want.grad, **GRAD_TOL[dtype], msg=lambda m, i=i: f"input {i}: {m}"
        )


BOXRPB_CASES = {
    # B, heads, Q, H, W, d, padding
    "odd": (2, 2, 19, 5, 7, 12, False),
    "odd-padded": (2, 2, 19, 5, 7, 12, True),
    "one-query-wide-map": (1, 3, 1, 2, 70, 8, True),  # W spans two column chunks in the backward
    "many-queries": (1, 1, 67, 3, 4, 16, False),  # Q spans two query tiles
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", BOXRPB_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_boxrpb_matches_reference(backend: str, case: str, dtype: torch.dtype, device: torch.device) -> None:
    b, h, n_q, height, width, d, padded = BOXRPB_CASES[case]
    shapes = [(b, h, n_q, d), (b, h, height * width, d), (b, h, height * width, d), (b, h, n_q, width),
              (b, h, n_q, height)]  # fmt: skip
    inputs = [randn(*s, dtype=dtype, device=device, seed=i) for i, s in enumerate(shapes)]
    mask = None
    if padded:
        mask = torch.rand(b, height * width, generator=torch.Generator().manual_seed(5)) < 0.3
        mask[0, :] = True  # a fully padded image: Plain-DETR's -100 logit then gives uniform weights
        mask = mask.to(device)
    _check(kernels.boxrpb_attention, inputs, backend, key_padding_mask=mask)


ROUTING_CASES = {
    # B, heads, regions, tokens per region, topk, d
    "topk-1": (2, 2, 6, 4, 1, 12),
    "topk-all": (2, 2, 6, 4, 6, 12),
    "odd-region": (1, 2, 4, 5, 3, 16),
    "region-over-one-tile": (1, 1, 2, 70, 2, 8),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ROUTING_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_routing_matches_reference(backend: str, case: str, dtype: torch.dtype, device: torch.device) -> None:
    b, h, regions, t, topk, d = ROUTING_CASES[case]
    inputs = [randn(b, h, regions * t, d, dtype=dtype, device=device, seed=i) for i in range(3)]
    index = distinct_topk(b, regions, topk, device)
    _check(kernels.routed_attention, inputs, backend, topk_index=index, region_size=t)


NEIGHBORHOOD_CASES = {
    # B, heads, H, W, d, kernel, dilation
    "k3": (1, 2, 9, 11, 12, 3, 1),
    "k3-dilated": (1, 2, 10, 13, 8, 3, 2),
    "rect-kernel-dilation": (2, 1, 12, 7, 8, (5, 3), (2, 1)),
    "k7-over-tiles": (1, 1, 17, 9, 16, 7, 1),
    "kernel-covers-map": (1, 1, 7, 7, 8, 7, 1),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", NEIGHBORHOOD_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_neighborhood_matches_reference(
    backend: str, case: str, dtype: torch.dtype, device: torch.device
) -> None:
    b, h, height, width, d, kernel, dilation = NEIGHBORHOOD_CASES[case]
    inputs = [randn(b, h, height, width, d, dtype=dtype, device=device, seed=i) for i in range(3)]
    _check(kernels.neighborhood_attention_2d, inputs, backend, kernel_size=kernel, dilation=dilation)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bfloat16_inputs(backend: str, device: torch.device) -> None:
    """bf16 runs (upcast to fp32 inside the interpreter, whose bf16 tl.dot is broken; native on CUDA)."""
    q, k, v = (randn(1, 2, 4 * 5, 16, dtype=torch.bfloat16, device=device, seed=i) for i in range(3))
    _check(
        kernels.routed_attention, [q, k, v], backend, topk_index=distinct_topk(1, 5, 2, device), region_size=4
    )
    q, k, v = (randn(1, 2, 8, 9, 16, dtype=torch.bfloat16, device=device, seed=i) for i in range(3))
    _check(kernels.neighborhood_attention_2d, [q, k, v], backend, kernel_size=3)
    shapes = [(1, 2, 9, 16), (1, 2, 12, 16), (1, 2, 12, 16), (1, 2, 9, 4), (1, 2, 9, 3)]
    inputs = [randn(*s, dtype=torch.bfloat16, device=device, seed=i) for i, s in enumerate(shapes)]
    _check(kernels.boxrpb_attention, inputs, backend)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_flex_trains_on_cuda(dtype: torch.dtype, device: torch.device) -> None:
    b, h, n_q, height, width, d, _ = BOXRPB_CASES["odd"]
    shapes = [(b, h, n_q, d), (b, h, height * width, d), (b, h, height * width, d), (b, h, n_q, width),
              (b, h, n_q, height)]  # fmt: skip
    inputs = [randn(*s, dtype=dtype, device=device, seed=i) for i, s in enumerate(shapes)]
    mask = (torch.rand(b, height * width, generator=torch.Generator().manual_seed(5)) < 0.3).to(device)
    _check(kernels.boxrpb_attention, inputs, "flex", key_padding_mask=mask)
    b, h, regions, t, topk, d = ROUTING_CASES["odd-region"]
    inputs = [randn(b, h, regions * t, d, dtype=dtype, device=device, seed=i) for i in range(3)]
    _check(
        kernels.routed_attention,
        inputs,
        "flex",
        topk_index=distinct_topk(b, regions, topk, device),
        region_size=t,
    )
    b, h, height, width, d, kernel, dilation = NEIGHBORHOOD_CASES["rect-kernel-dilation"]
    inputs = [randn(b, h, height, width, d, dtype=dtype, device=device, seed=i) for i in range(3)]
    _check(kernels.neighborhood_attention_2d, inputs, "flex", kernel_size=kernel, dilation=dilation)
