"""One compiled FlexAttention shared by the flex backends (compiled: eager FlexAttention materialises scores)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import BlockMask, flex_attention

MIN_HEAD_DIM = 16


@functools.cache
def _compiled() -> Callable[..., torch.Tensor]:
    return torch.compile(flex_attention)


def flex(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    score_mod: Callable | None = None,
    block_mask: BlockMask | None = None,
) -> torch.Tensor:
    # FlexAttention's CUDA kernels need head dims of at least 16 (torch 2.11 raises "NYI: embedding
    # dimension ... must be at least 16"); zero columns change neither q.k nor the kept output columns.
    d, dv = q.shape[-1], v.shape[-1]
    if d < MIN_HEAD_DIM:
        q, k = F.pad(q, (0, MIN_HEAD_DIM - d)), F.pad(k, (0, MIN_HEAD_DIM - d))
    if dv < MIN_HEAD_DIM:
        v = F.pad(v, (0, MIN_HEAD_DIM - dv))
    out = _compiled()(q, k, v, score_mod=score_mod, block_mask=block_mask, scale=scale)
    return out[..., :dv]
