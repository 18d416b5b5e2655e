"""ResNet-18 layout (He et al. 2016) whose blocks can be FiLM-conditioned (Perez et al. 2018).

BC-Z encodes its prompt frames with it unconditioned and its robot frame with every block conditioned on the
prompt embedding.
"""

from __future__ import annotations

import torch
from torch import nn

from vid2robot.policy.preprocess import ImageNetNormalize


class FiLMBlock(nn.Module):
    """Basic block (two 3x3 convs, GroupNorm); with ``cond_dim``, ``h * (1 + gamma(e)) + beta(e)`` before the
    residual sum, initialised to the identity modulation."""

    def __init__(self, c_in: int, c_out: int, stride: int, cond_dim: int | None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(8, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(8, c_out)
        self.act = nn.ReLU()
        self.shortcut = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.GroupNorm(8, c_out))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )
        self.film = nn.Linear(cond_dim, 2 * c_out) if cond_dim else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm2(self.conv2(self.act(self.norm1(self.conv1(x)))))
        if self.film is not None:
            gamma, beta = self.film(cond)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + gamma) + beta
        return self.act(h + self.shortcut(x))


class FiLMResNet(nn.Module):
    """Stem (7x7 stride-2 conv, 3x3 stride-2 max-pool) then one stage of basic blocks per width, each stage
    after the first halving the resolution: ``[B, 3, S, S]`` -> ``[B, widths[-1], S / r, S / r]`` with
    ``r = 2 ** (len(widths) + 1)`` (32 for the four stages of ResNet-18)."""

    def __init__(
        self, widths: tuple[int, ...], blocks_per_stage: tuple[int, ...], cond_dim: int | None = None
    ) -> None:
        super().__init__()
        stem = widths[0]
        self.stem = nn.Sequential(
            ImageNetNormalize(), nn.Conv2d(3, stem, 7, 2, 3, bias=False), nn.GroupNorm(8, stem), nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )  # fmt: skip
        blocks, c_in = [], stem
        for stage, (width, count) in enumerate(zip(widths, blocks_per_stage, strict=True)):
            for i in range(count):
                blocks.append(FiLMBlock(c_in, width, 2 if i == 0 and stage > 0 else 1, cond_dim))
                c_in = width
        self.blocks = nn.ModuleList(blocks)
        self.out_dim = c_in

    def forward(self, images: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x = self.stem(images)
        for block in self.blocks:
            x = block(x, cond)
        return x
