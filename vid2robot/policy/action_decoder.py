"""Action decoder (Vid2Robot Sec. III-B): learned action queries attend the fused tokens; one bin
distribution per (chunk step, action dimension), as in RT-1's 256-bin action tokens."""

from __future__ import annotations

import torch
from torch import nn

from vid2robot.policy.attention import CrossAttentionBlock


class ActionDecoder(nn.Module):
    """``horizon * action_dim`` queries; each block: self-attention, cross-attention to context, FF."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        horizon: int,
        action_dim: int,
        bins: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.horizon, self.action_dim = horizon, action_dim
        self.queries = nn.Parameter(torch.randn(horizon * action_dim, dim) * 0.02)
        self.blocks = nn.ModuleList(
            CrossAttentionBlock(dim, num_heads, mlp_ratio, dropout, self_attention=True) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, bins)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """context ``[B, L, D]`` -> logits ``[B, horizon, action_dim, bins]``."""
        x = self.queries.expand(context.shape[0], -1, -1)
        for block in self.blocks:
            x, _ = block(x, context)
        logits = self.head(self.norm(x))
        return logits.view(context.shape[0], self.horizon, self.action_dim, -1)
