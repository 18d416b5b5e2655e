"""BoxRPB cross-attention on FlexAttention: the per-axis biases are looked up inside ``score_mod``."""

from __future__ import annotations

import functools

import torch
from torch.nn.attention.flex_attention import BlockMask

from kernels.boxrpb.reference import PADDING_LOGIT
from kernels.calls import BoxRPBCall
from kernels.flex_common import flex


def boxrpb_attention(call: BoxRPBCall) -> torch.Tensor:
    q, k, v, bias_x, bias_y, key_padding_mask, scale = call
    width = bias_x.shape[-1]
    if key_padding_mask is None:

        def score_mod(score, b, h, q_idx, kv_idx):
            return score + bias_x[b, h, q_idx, kv_idx % width] + bias_y[b, h, q_idx, kv_idx // width]

    else:
        padding = key_padding_mask.to(q.dtype) * PADDING_LOGIT

        def score_mod(score, b, h, q_idx, kv_idx):
            bias = bias_x[b, h, q_idx, kv_idx % width] + bias_y[b, h, q_idx, kv_idx // width]
            return score + bias + padding[b, kv_idx]

    return flex(q, k, v, scale, score_mod=score_mod, block_mask=_every_key(q.shape[2], k.shape[2], q.device))


@functools.lru_cache(maxsize=16)
def _every_key(n_q: int, n_k: int, device: torch.device) -> BlockMask:
    """One block spanning all queries and keys, built eagerly once per shape.

    flex_attention builds the same default itself, inside the compiled graph, where torch 2.11 failed to compile
    it at some shapes (seen on an H100 with Q=19 and 35 keys).
    """
    block = (-(-n_q // 128) * 128, -(-n_k // 128) * 128)
    return BlockMask.from_kv_blocks(
        kv_num_blocks=torch.ones(1, 1, 1, dtype=torch.int32, device=device),
        kv_indices=torch.zeros(1, 1, 1, 1, dtype=torch.int32, device=device),
        BLOCK_SIZE=block,
        seq_lengths=(n_q, n_k),
    )
