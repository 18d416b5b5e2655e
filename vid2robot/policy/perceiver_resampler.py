"""Perceiver resampler (Flamingo, Alayrac et al. 2022, Sec. 2.1 / Fig. 5): a video to a fixed set of latents."""

from __future__ import annotations

import torch
from torch import nn

from vid2robot.policy.attention import FeedForward, MultiHeadAttention


class _ResamplerLayer(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, num_heads, dropout)
        self.ff = FeedForward(dim, mlp_ratio, dropout)

    def forward(
        self, media: torch.Tensor, latents: torch.Tensor, need_weights: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        q = self.norm_latents(latents)
        # Flamingo: keys/values are the media tokens concatenated with the latents themselves.
        context = torch.cat([self.norm_media(media), q], dim=1)
        attended, weights = self.attn(q, context, need_weights)
        latents = latents + attended
        return latents + self.ff(latents), weights


class PerceiverResampler(nn.Module):
    """``[B, T, N, D]`` frame tokens (+ learned time embedding) -> ``[B, num_latents, D]``.

    Each layer: X <- X + Attn(q=X, kv=[media; X]); X <- X + FF(X), then a final LayerNorm.
    """

    def __init__(
        self,
        dim: int,
        num_latents: int,
        depth: int,
        num_heads: int,
        max_frames: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.max_frames = max_frames
        self.latents = nn.Parameter(torch.randn(num_latents, dim) * 0.02)
        self.time_embed = nn.Parameter(torch.randn(max_frames, 1, dim) * 0.02)
        self.layers = nn.ModuleList(_ResamplerLayer(dim, num_heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(
        self, tokens: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns the latents and, if asked, the last layer's weights ``[B, H, L, T*N + L]``."""
        if tokens.dim() != 4:
            raise ValueError(f"tokens must be [B, T, N, D], got {tuple(tokens.shape)}")
        b, t, n, d = tokens.shape
        if t > self.max_frames:
            raise ValueError(f"got {t} frames but this resampler has time embeddings for {self.max_frames}")
        media = (tokens + self.time_embed[:t]).reshape(b, t * n, d)
        latents = self.latents.expand(b, -1, -1)
        weights = None
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            latents, weights = layer(media, latents, need_weights and last)
        return self.norm(latents), weights
