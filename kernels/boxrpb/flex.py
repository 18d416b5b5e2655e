"""BoxRPB cross-attention on FlexAttention: the per-axis biases are looked up inside ``score_mod``."""

from __future__ import annotations

import torch

from kernels.boxrpb.reference import PADDING_LOGIT
from kernels.flex_common import flex


def boxrpb_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias_x: torch.Tensor,
    bias_y: torch.Tensor,
    key_padding_mask: torch.Tensor | None,
    scale: float,
) -> torch.Tensor:
    width = bias_x.shape[-1]
    if key_padding_mask is None:

        def score_mod(score, b, h, q_idx, kv_idx):
            return score + bias_x[b, h, q_idx, kv_idx % width] + bias_y[b, h, q_idx, kv_idx // width]

    else:
        padding = key_padding_mask.to(q.dtype) * PADDING_LOGIT

        def score_mod(score, b, h, q_idx, kv_idx):
            bias = bias_x[b, h, q_idx, kv_idx % width] + bias_y[b, h, q_idx, kv_idx // width]
            return score + bias + padding[b, kv_idx]

    return flex(q, k, v, scale, score_mod=score_mod)
