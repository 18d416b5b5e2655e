"""CUDA-only checks: auto picks the fused kernels, they never sync the device, and the fused BoxRPB stays far
below the reference's memory."""

from __future__ import annotations

import pytest
import torch
from test_kernels_api import training_calls

import kernels
from kernels import checks, dispatch

pytestmark = pytest.mark.gpu


def test_auto_uses_triton_on_cuda() -> None:
    assert dispatch.resolve("auto", torch.device("cuda"), needs_grad=True) == "triton"


def _peak_bytes(fn) -> int:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - start


def test_boxrpb_triton_training_memory_is_under_a_tenth_of_reference() -> None:
    b, h, n_q, height, width, d = 2, 8, 1800, 50, 84, 32  # Plain-DETR decoder, training queries
    dev, dt = torch.device("cuda"), torch.bfloat16
    shapes = [(b, h, n_q, d), (b, h, height * width, d), (b, h, height * width, d), (b, h, n_q, width),
              (b, h, n_q, height)]  # fmt: skip
    inputs = [torch.randn(*s, device=dev, dtype=dt, requires_grad=True) for s in shapes]

    def step(backend: str) -> None:
        kernels.boxrpb_attention(*inputs, backend=backend).sum().backward()

    step("triton")  # compile outside the measurement
    fused, reference = _peak_bytes(lambda: step("triton")), _peak_bytes(lambda: step("reference"))
    assert fused < 0.1 * reference, (fused, reference)


def test_fused_ops_never_sync_the_device() -> None:
    """Without debug checks a training call holds no host read: torch's sync debug mode raises on any sync."""
    checks.set_debug_checks(False)
    calls = training_calls("triton", "cuda")
    for call in calls:
        call()  # compilation and autotuning (which synchronise) happen here, outside the checked calls
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for call in calls:
            call()
    finally:
        torch.cuda.set_sync_debug_mode("default")
