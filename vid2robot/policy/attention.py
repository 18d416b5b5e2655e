"""Multi-head attention and feed-forward blocks shared by the resampler, fusion and action decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MultiHeadAttention(nn.Module):
    """softmax(Q K^T / sqrt(d)) V over heads (Vaswani et al. 2017), optionally returning the weights."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self, query: torch.Tensor, context: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """query ``[B, Nq, D]``, context ``[B, Nk, D]`` -> (``[B, Nq, D]``, weights ``[B, H, Nq, Nk]`` or None)."""
        q = self._heads(self.q(query))
        k, v = (self._heads(t) for t in self.kv(context).chunk(2, dim=-1))
        p = self.dropout if self.training else 0.0
        if need_weights:
            weights = torch.softmax(q @ k.transpose(-2, -1) * self.head_dim**-0.5, dim=-1)
            out = F.dropout(weights, p) @ v
        else:
            weights = None
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        b, _, nq, _ = out.shape
        return self.out(out.transpose(1, 2).reshape(b, nq, -1)), weights


class FeedForward(nn.Sequential):
    """Pre-norm two-layer GELU MLP."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        hidden = int(dim * mlp_ratio)
        super().__init__(
            nn.LayerNorm(dim),
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )


class CrossAttentionBlock(nn.Module):
    """Pre-norm block: x + Attn(LN(x), LN(context)), then x + FF(x); optional self-attention first."""

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float, dropout: float, self_attention: bool = False
    ) -> None:
        super().__init__()
        self.self_norm = nn.LayerNorm(dim) if self_attention else None
        self.self_attn = MultiHeadAttention(dim, num_heads, dropout) if self_attention else None
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.cross_attn = MultiHeadAttention(dim, num_heads, dropout)
        self.ff = FeedForward(dim, mlp_ratio, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.self_attn is not None:
            h = self.self_norm(x)
            x = x + self.drop(self.self_attn(h, h)[0])
        attended, weights = self.cross_attn(self.norm_q(x), self.norm_kv(context), need_weights)
        x = x + self.drop(attended)
        return x + self.ff(x), weights
