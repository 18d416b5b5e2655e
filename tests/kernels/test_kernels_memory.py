"""The fused paths never allocate what the official implementations materialise.

Measured on CPU with the profiler's allocation records (the largest allocation made by any single op during the
call): the reference must show the big tensor (so the measurement can see it), the fused paths must stay
well below it. Shapes are chosen so that the materialised tensor dwarfs every input and output.
"""

from __future__ import annotations

import pytest
import torch
from tests_kernels_cases import distinct_topk
from torch.profiler import ProfilerActivity, profile

import kernels

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(), reason="CPU allocation records; GPU: test_kernels_gpu.py"
)


def largest_allocation(fn) -> int:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return max(event.self_cpu_memory_usage for event in prof.events())


def _forward_backward(op, inputs, backend, **kwargs):
    leaves = [t.clone().requires_grad_() for t in inputs]
    return lambda: op(*leaves, backend=backend, **kwargs).sum().backward()


def test_boxrpb_triton_allocates_no_query_by_pixel_tensor() -> None:
    b, h, n_q, height, width, d = 1, 1, 64, 16, 16, 8
    shapes = [(b, h, n_q, d), (b, h, height * width, d), (b, h, height * width, d), (b, h, n_q, width),
              (b, h, n_q, height)]  # fmt: skip
    inputs = [torch.randn(*s) for s in shapes]
    bias_bytes = b * h * n_q * height * width * 4
    assert largest_allocation(_forward_backward(kernels.boxrpb_attention, inputs, "reference")) >= bias_bytes
    assert largest_allocation(_forward_backward(kernels.boxrpb_attention, inputs, "triton")) < bias_bytes // 2


def test_routing_triton_allocates_no_gathered_copy() -> None:
    b, h, regions, t, topk, d = 1, 2, 16, 16, 8, 8
    inputs = [torch.randn(b, h, regions * t, d) for _ in range(3)]
    index = distinct_topk(b, regions, topk)
    gathered_bytes = b * h * regions * topk * t * d * 4

    def run(backend: str):
        return _forward_backward(kernels.routed_attention, inputs, backend, topk_index=index, region_size=t)

    assert largest_allocation(run("reference")) >= gathered_bytes
    assert largest_allocation(run("triton")) < gathered_bytes // 2


def test_neighborhood_triton_allocates_no_window_copy() -> None:
    b, h, height, width, d, kernel = 1, 1, 16, 16, 8, 5
    inputs = [torch.randn(b, h, height, width, d) for _ in range(3)]
    window_bytes = b * h * height * width * kernel * kernel * d * 4

    def run(backend: str):
        return _forward_backward(kernels.neighborhood_attention_2d, inputs, backend, kernel_size=kernel)

    assert largest_allocation(run("reference")) >= window_bytes
    assert largest_allocation(run("triton")) < window_bytes // 2
