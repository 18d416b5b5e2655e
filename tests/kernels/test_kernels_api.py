"""Public API: backend choice and actionable errors on bad input."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from tests_kernels_cases import distinct_topk
from torch.utils._python_dispatch import TorchDispatchMode

import kernels
from kernels import checks, dispatch

# aten ops that bring a tensor's values to the host: each is a device sync on CUDA.
HOST_READS = {"_local_scalar_dense", "is_nonzero", "equal", "nonzero", "masked_select", "unique"}


def _boxrpb_inputs(b=1, h=2, n_q=3, height=2, width=3, d=4):
    return [torch.randn(*s) for s in ((b, h, n_q, d), (b, h, height * width, d), (b, h, height * width, d),
                                      (b, h, n_q, width), (b, h, n_q, height))]  # fmt: skip


def test_public_names_and_backends() -> None:
    assert set(kernels.__all__) >= {"boxrpb_attention", "routed_attention", "neighborhood_attention_2d"}
    assert kernels.BACKENDS == ("auto", "reference", "flex", "triton")


def test_auto_is_reference_on_cpu_for_training_and_inference() -> None:
    assert dispatch.resolve("auto", torch.device("cpu"), needs_grad=True) == "reference"
    assert dispatch.resolve("auto", torch.device("cpu"), needs_grad=False) == "reference"
    inputs = _boxrpb_inputs()
    torch.testing.assert_close(kernels.boxrpb_attention(*inputs), kernels.boxrpb_attention(*inputs, backend="reference"),
                               rtol=0, atol=0)  # fmt: skip


def test_scale_argument_changes_the_softmax_temperature() -> None:
    q, k, v = (torch.randn(1, 1, 8, 16) for _ in range(3))  # default scale 16**-0.5
    index = torch.tensor([[[0, 1], [1, 0]]])
    explicit = kernels.routed_attention(q, k, v, index, 4, scale=0.5)
    assert torch.allclose(explicit, kernels.routed_attention(q * 0.25, k, v, index, 4, scale=2.0), atol=1e-6)
    assert not torch.allclose(explicit, kernels.routed_attention(q, k, v, index, 4), atol=1e-3)


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        kernels.boxrpb_attention(*_boxrpb_inputs(), backend="cuda")


def test_flex_refuses_training_on_cpu() -> None:
    inputs = [t.requires_grad_() for t in _boxrpb_inputs()]
    with pytest.raises(ValueError, match="no backward on cpu"):
        kernels.boxrpb_attention(*inputs, backend="flex")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_triton_on_cpu_needs_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        kernels.boxrpb_attention(*_boxrpb_inputs(), backend="triton")


@pytest.mark.parametrize(
    ("position", "replacement", "message"),
    [
        (0, torch.randn(1, 2, 3, 5), r"k must have shape \[B, heads, H\*W, head_dim\].* = \(1, 2, 6, 5\)"),
        (2, torch.randn(1, 2, 7, 4), r"v must have shape"),
        (3, torch.randn(1, 2, 4, 3), r"bias_x must have shape \[B, heads, Q, W\] = \(1, 2, 3, 3\)"),
        (4, torch.randn(1, 2, 3, 3), r"k must have shape"),  # H from bias_y no longer matches k's H*W
        (0, torch.randn(2, 3, 4), r"q must have 4 dims"),
        (1, torch.randn(1, 2, 6, 4, dtype=torch.float64), r"k has dtype torch.float64"),
    ],
)
def test_boxrpb_bad_shapes_name_the_tensor(position: int, replacement: torch.Tensor, message: str) -> None:
    inputs = _boxrpb_inputs()
    inputs[position] = replacement
    with pytest.raises(ValueError, match=message):
        kernels.boxrpb_attention(*inputs)


def test_boxrpb_padding_mask_must_be_bool_b_by_hw() -> None:
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \[B, H\*W\]"):
        kernels.boxrpb_attention(*_boxrpb_inputs(), key_padding_mask=torch.zeros(1, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="must be bool"):
        kernels.boxrpb_attention(*_boxrpb_inputs(), key_padding_mask=torch.zeros(1, 6))


def test_routing_rejects_bad_regions_and_indices() -> None:
    q = torch.randn(1, 2, 12, 4)
    with pytest.raises(ValueError, match="not a multiple of region_size 5"):
        kernels.routed_attention(q, q, q, distinct_topk(1, 2, 1), 5)
    with pytest.raises(ValueError, match=r"topk_index values must lie in \[0, 3\)"):
        kernels.routed_attention(q, q, q, torch.tensor([[[0], [1], [3]]]), 4)
    with pytest.raises(ValueError, match=r"\[B, regions, topk\] = \[1, 3, 1..3\]"):
        kernels.routed_attention(q, q, q, distinct_topk(1, 4, 2), 4)
    with pytest.raises(ValueError, match="int64 or int32"):
        kernels.routed_attention(q, q, q, distinct_topk(1, 3, 2).float(), 4)


def test_neighborhood_rejects_even_kernels_and_small_maps() -> None:
    q = torch.randn(1, 1, 6, 6, 4)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        kernels.neighborhood_attention_2d(q, q, q, 4)
    with pytest.raises(ValueError, match=r"feature map 6x6 is smaller than kernel_size\*dilation = 7x7"):
        kernels.neighborhood_attention_2d(q, q, q, 7)
    with pytest.raises(ValueError, match="dilation must be a positive int"):
        kernels.neighborhood_attention_2d(q, q, q, 3, dilation=0)


class _HostReads(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in HOST_READS:
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


def training_calls(backend: str, device: torch.device | str = "cpu") -> list[Callable[[], None]]:
    """Forward + backward of each op on small inputs built up front (so a call itself copies nothing)."""
    box = [t.to(device).requires_grad_() for t in _boxrpb_inputs()]
    pad = torch.zeros(1, 6, dtype=torch.bool, device=device)
    routed = [torch.randn(1, 2, 12, 16, device=device, requires_grad=True) for _ in range(3)]
    index = distinct_topk(1, 3, 2, device)
    window = [torch.randn(1, 1, 6, 7, 8, device=device, requires_grad=True) for _ in range(3)]
    return [
        lambda: kernels.boxrpb_attention(*box, key_padding_mask=pad, backend=backend).sum().backward(),
        lambda: kernels.routed_attention(*routed, index, 4, backend=backend).sum().backward(),
        lambda: kernels.neighborhood_attention_2d(*window, 3, backend=backend).sum().backward(),
    ]


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_ops_read_no_values_back_without_debug_checks(backend: str, device: torch.device) -> None:
    """The op path never syncs the device (on CUDA also under torch's sync debug mode: test_kernels_gpu.py);
    debug checks do, and the recorder sees them."""
    calls = training_calls(backend, device)
    for call in calls:
        call()  # first calls compile and autotune outside the recorded ones
    checks.set_debug_checks(False)
    with _HostReads() as reads:
        for call in calls:
            call()
    assert reads.seen == []
    checks.set_debug_checks(True)
    with _HostReads() as reads:
        for call in calls:
            call()
    assert "aten._local_scalar_dense.default" in reads.seen  # the topk_index range check


def test_debug_checks_off_skip_the_index_range_check() -> None:
    q = torch.randn(1, 2, 12, 4)
    checks.set_debug_checks(False)
    with pytest.raises(RuntimeError, match="out of bounds"):  # torch.gather's own error, not ours
        kernels.routed_attention(q, q, q, torch.tensor([[[0], [1], [3]]]), 4, backend="reference")
