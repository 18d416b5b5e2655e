"""One compiled FlexAttention shared by the flex backends (compiled: eager FlexAttention materialises scores),
and the cache of the BlockMasks they build (building one per call dominated the flex timings)."""

from __future__ import annotations

import functools
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable

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


class IndexedCache:
    """The last ``size`` values built from an index tensor, keyed by that tensor's identity and version (any
    in-place change bumps the version) plus ``key``. The tensor is held weakly: a new tensor that reuses a
    freed one's ``id`` is told apart by the dead reference. Inference tensors (no version counter) are never
    cached."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._entries: OrderedDict[tuple, tuple[weakref.ref, object]] = OrderedDict()

    def get(self, index: torch.Tensor, key: Hashable, build: Callable[[], object]) -> object:
        if index.is_inference():
            return build()
        full_key = (id(index), index._version, key)
        entry = self._entries.get(full_key)
        if entry is not None and entry[0]() is index:
            self._entries.move_to_end(full_key)
            return entry[1]
        value = build()
        self._entries[full_key] = (weakref.ref(index), value)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value
