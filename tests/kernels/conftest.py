"""Kernels tests. Without CUDA the Triton kernels run through Triton's CPU interpreter.

``TRITON_INTERPRET`` is read when a kernel module is imported (``triton.jit`` decides then) and while kernels
run, so it is set here per test with ``monkeypatch`` (other areas' tests never see it) and the fused modules are
(re)imported under it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# Plain ``pytest`` puts ``tests/`` on sys.path, where this folder would shadow the real ``kernels`` package as
# a namespace package; the repository root goes first so ``import kernels`` is the package under test.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
if getattr(sys.modules.get("kernels"), "__file__", "") is None:
    for _name in [m for m in sys.modules if m == "kernels" or m.startswith("kernels.")]:
        del sys.modules[_name]

FUSED_MODULES = (
    "kernels.boxrpb.triton_fused",
    "kernels.routing.triton_fused",
    "kernels.neighborhood.triton_fused",
)
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(autouse=True)
def _triton_interpreter_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    if torch.cuda.is_available() or importlib.util.find_spec("triton") is None:
        return
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    from triton.runtime.autotuner import Autotuner
    from triton.runtime.interpreter import InterpretedFunction

    for name in FUSED_MODULES:
        module = importlib.import_module(name)
        kernel = module._forward
        while isinstance(kernel, Autotuner):  # the autotuned kernels wrap the jit function
            kernel = kernel.fn
        if not isinstance(kernel, InterpretedFunction):
            importlib.reload(module)


@pytest.fixture(autouse=True)
def _debug_checks() -> Iterator[None]:
    """The tests feed bad values too: value checks on (off by default, a device sync each; kernels/checks.py)."""
    from kernels import checks

    before = checks.debug_checks()
    checks.set_debug_checks(True)
    yield
    checks.set_debug_checks(before)


@pytest.fixture
def device() -> torch.device:
    return DEVICE
