"""One compiled FlexAttention shared by the flex backends (compiled: eager FlexAttention materialises scores)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch.nn.attention.flex_attention import BlockMask, flex_attention


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
    return _compiled()(q, k, v, score_mod=score_mod, block_mask=block_mask, scale=scale)
