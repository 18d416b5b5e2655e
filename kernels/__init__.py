"""Fused attention ops for the detector and backbones (depends on torch, and on triton for ``backend='triton'``).

- ``boxrpb_attention``: Plain-DETR BoxRPB cross-attention, per-axis box biases, no ``Q x H*W`` bias tensor.
- ``routed_attention``: BiFormer bi-level routing attention, no top-k-fold K/V copy.
- ``neighborhood_attention_2d``: NATTEN-style 2-D neighborhood attention.

Each takes ``backend="auto" | "reference" | "flex" | "triton"`` and ``scale=`` (default ``head_dim ** -0.5``).
``set_debug_checks(True)`` (or ``KERNELS_DEBUG_CHECKS=1``) adds the input checks that read tensor values, a device
sync each (off by default, see ``kernels/checks.py``).
"""

from kernels.api import boxrpb_attention, neighborhood_attention_2d, routed_attention
from kernels.checks import set_debug_checks
from kernels.dispatch import BACKENDS

__all__ = [
    "BACKENDS",
    "boxrpb_attention",
    "neighborhood_attention_2d",
    "routed_attention",
    "set_debug_checks",
]
