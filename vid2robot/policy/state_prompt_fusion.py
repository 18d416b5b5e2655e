"""State-prompt fusion (Vid2Robot Sec. III-B): state tokens query the prompt tokens by cross-attention."""

from __future__ import annotations

import torch
from torch import nn

from vid2robot.policy.attention import CrossAttentionBlock


class StatePromptFusion(nn.Module):
    """``depth`` pre-norm blocks X <- X + CrossAttn(q=X_state, kv=X_prompt); X <- X + FF(X)."""

    def __init__(self, dim: int, depth: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            CrossAttentionBlock(dim, num_heads, mlp_ratio, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(
        self, state: torch.Tensor, prompt: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """state ``[B, Ls, D]``, prompt ``[B, Lp, D]`` -> fused ``[B, Ls, D]`` and, with ``need_weights``, the
        last block's attention ``[B, H, Ls, Lp]`` (else None: every block then runs the fused SDPA path)."""
        weights = None
        for i, block in enumerate(self.blocks):
            state, w = block(state, prompt, need_weights=need_weights and i == len(self.blocks) - 1)
            weights = w if w is not None else weights
        return self.norm(state), weights
