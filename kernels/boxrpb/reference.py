"""BoxRPB cross-attention as the official Plain-DETR computes it (the ground truth of the other backends).

impiga/Plain-DETR, ``models/global_rpe_decomp_decoder.py``, ``GlobalCrossAttention.forward``: the per-axis
tables are broadcast into a full ``[B, heads, Q, H*W]`` bias (``rpe_x[:, :, None] + rpe_y[:, :, :, None]``,
flattened row-major, y outer), added to ``(q * scale) @ k^T``, padded keys get ``-100`` added (not ``-inf``),
the logits are clipped to the dtype's finite range, then softmax and ``@ v``.
"""

from __future__ import annotations

import torch

from kernels.calls import BoxRPBCall

PADDING_LOGIT = -100.0  # what the official decoder adds to padded keys' logits


def boxrpb_attention(call: BoxRPBCall) -> torch.Tensor:
    q, k, v, bias_x, bias_y, key_padding_mask, scale = call
    bias = (bias_y[..., :, None] + bias_x[..., None, :]).flatten(-2)  # [B, h, Q, H*W]
    logits = (q * scale) @ k.transpose(-2, -1) + bias
    if key_padding_mask is not None:
        logits = logits + key_padding_mask[:, None, None, :].to(logits.dtype) * PADDING_LOGIT
    finfo = torch.finfo(logits.dtype)
    logits = logits.clamp(finfo.min, finfo.max)
    return logits.softmax(dim=-1) @ v
