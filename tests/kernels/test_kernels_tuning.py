"""Every autotuning candidate of the Triton kernels is correct, not only the interpreter's default.

On a GPU the autotuner may pick any candidate in a module's ``TUNING``; here each one is forced in turn (all
kernels of an op at once, the i-th candidate of each) and checked like test_kernels_fused.py does, forward and
every gradient, at shapes that cross tile borders for the larger tiles too. Triton and the fused modules are
imported inside the tests: imported at collection, before conftest sets ``TRITON_INTERPRET``, Triton's own
``@jit`` helpers (``tl.zeros``) would not run in the interpreter.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator

import pytest
import torch
from test_kernels_fused import _check
from tests_kernels_cases import distinct_topk, randn

import kernels

MODULES = {
    "boxrpb": "kernels.boxrpb.triton_fused",
    "routing": "kernels.routing.triton_fused",
    "neighborhood": "kernels.neighborhood.triton_fused",
}


def _candidates(monkeypatch: pytest.MonkeyPatch, op: str) -> Iterator[str]:
    """Force each candidate index in turn on every kernel of ``op``; yields a label for failure messages."""
    import triton

    module = importlib.import_module(MODULES[op])
    for index in range(max(len(c) for c in module.TUNING.values())):
        with monkeypatch.context() as patch:
            labels = []
            for name, candidates in module.TUNING.items():
                tiles, warps, stages = candidates[index % len(candidates)]
                config = triton.Config(dict(tiles), num_warps=warps, num_stages=stages)
                patch.setattr(getattr(module, name), "configs", [config])
                labels.append(f"{name} {tiles}")
            yield f"candidate {index}: " + ", ".join(labels)


def _check_each(monkeypatch: pytest.MonkeyPatch, op: str, run: Callable[[], None]) -> None:
    for label in _candidates(monkeypatch, op):
        try:
            run()
        except AssertionError as error:
            raise AssertionError(f"{label}: {error}") from error


def test_boxrpb_candidates(monkeypatch: pytest.MonkeyPatch, device: torch.device) -> None:
    b, h, n_q, height, width, d = 1, 2, 130, 3, 70, 16
    shapes = [(b, h, n_q, d), (b, h, height * width, d), (b, h, height * width, d), (b, h, n_q, width),
              (b, h, n_q, height)]  # fmt: skip
    inputs = [randn(*s, dtype=torch.float32, device=device, seed=i) for i, s in enumerate(shapes)]
    mask = (torch.rand(b, height * width, generator=torch.Generator().manual_seed(5)) < 0.3).to(device)
    _check_each(
        monkeypatch,
        "boxrpb",
        lambda: _check(kernels.boxrpb_attention, inputs, "triton", key_padding_mask=mask),
    )


def test_routing_candidates(monkeypatch: pytest.MonkeyPatch, device: torch.device) -> None:
    b, h, regions, t, topk, d = 1, 2, 4, 36, 3, 16
    inputs = [randn(b, h, regions * t, d, dtype=torch.float32, device=device, seed=i) for i in range(3)]
    index = distinct_topk(b, regions, topk, device)
    _check_each(
        monkeypatch,
        "routing",
        lambda: _check(kernels.routed_attention, inputs, "triton", topk_index=index, region_size=t),
    )


def test_neighborhood_candidates(monkeypatch: pytest.MonkeyPatch, device: torch.device) -> None:
    inputs = [randn(1, 1, 19, 21, 8, dtype=torch.float32, device=device, seed=i) for i in range(3)]
    _check_each(
        monkeypatch,
        "neighborhood",
        lambda: _check(kernels.neighborhood_attention_2d, inputs, "triton", kernel_size=5, dilation=(1, 2)),
    )
