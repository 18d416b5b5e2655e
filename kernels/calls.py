"""What the public ops hand a backend: the inputs after ``kernels/api.py`` validated them.

Every backend of an op takes the same record, so an op's signature is written once, here; shapes are
documented on the public op in ``kernels/api.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class BoxRPBCall(NamedTuple):
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    bias_x: torch.Tensor
    bias_y: torch.Tensor
    key_padding_mask: torch.Tensor | None
    scale: float


class RoutingCall(NamedTuple):
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    topk_index: torch.Tensor
    region_size: int
    scale: float


class NeighborhoodCall(NamedTuple):
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    kernel_size: tuple[int, int]
    dilation: tuple[int, int]
    scale: float
