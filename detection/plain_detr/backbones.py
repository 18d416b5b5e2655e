"""Single-scale stride-16 backbones: a small conv net (tests, demo, ablation), a plain ViT, and BiFormer.

Plain-DETR needs one feature map at stride 16 (paper Sec. 3: the last map of a plain ViT, no FPN); every backbone
here returns ``[B, out_channels, ceil(H/16), ceil(W/16)]`` from ``[B, 3, H, W]``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn


class ConvNet(nn.Module):
    """Four stride-2 stages of conv3x3-GroupNorm-ReLU (x2) -> stride 16."""

    def __init__(self, channels: list[int] | tuple[int, ...] = (32, 64, 128, 256)) -> None:
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"ConvNet needs 4 stage widths (stride 16), got {list(channels)}")
        layers: list[nn.Module] = []
        c_in = 3
        for c in channels:
            groups = math.gcd(8, c)
            layers += [
                nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False),
                nn.GroupNorm(groups, c),
                nn.ReLU(inplace=True),
                nn.Conv2d(c, c, 3, padding=1, bias=False),
                nn.GroupNorm(groups, c),
                nn.ReLU(inplace=True),
            ]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.out_channels = int(channels[-1])

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


def sincos_2d(h: int, w: int, dim: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Fixed 2-D sine-cosine embedding ``[h*w, dim]`` (MAE / ViTDet style), any grid size without interpolation."""
    if dim % 4:
        raise ValueError(f"sincos_2d needs dim divisible by 4, got {dim}")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, device=device, dtype=dtype) / quarter)
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device, dtype=dtype),
        torch.arange(w, device=device, dtype=dtype),
        indexing="ij",
    )
    ox, oy = xs.reshape(-1, 1) * omega, ys.reshape(-1, 1) * omega
    return torch.cat((ox.sin(), ox.cos(), oy.sin(), oy.cos()), dim=1)


class PlainViT(nn.Module):
    """Patch-16 ViT with global attention and a fixed sin-cos position embedding; its last map is the output."""

    def __init__(
        self, embed_dim: int = 192, depth: int = 4, num_heads: int = 3, mlp_ratio: float = 4.0
    ) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, embed_dim, 16, stride=16)
        layer = nn.TransformerEncoderLayer(
            embed_dim,
            num_heads,
            int(embed_dim * mlp_ratio),
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(embed_dim)
        self.out_channels = embed_dim

    def forward(self, x: Tensor) -> Tensor:
        h_pad, w_pad = (-x.shape[-2]) % 16, (-x.shape[-1]) % 16
        x = nn.functional.pad(x, (0, w_pad, 0, h_pad))
        x = self.patch_embed(x)
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2) + sincos_2d(h, w, c, x.device, x.dtype)
        tokens = self.norm(self.blocks(tokens))
        return tokens.transpose(1, 2).reshape(b, c, h, w)


class BiFormerStride16(nn.Module):
    """The stride-16 stage (index 2) of the package's BiFormer-T (``detection.biformer.biformer_tiny``);
    ``checkpoint_path`` loads official ImageNet weights."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        from detection.biformer import biformer_tiny

        self.body = biformer_tiny(num_classes=0, out_indices=(2,), **kwargs)
        self.out_channels = int(self.body.embed_dim[2])

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)[0]


def build_backbone(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """``convnet`` | ``vit`` | ``biformer_tiny`` -> a module with ``out_channels`` and a stride-16 output."""
    if name == "convnet":
        return ConvNet(**kwargs)
    if name == "vit":
        return PlainViT(**kwargs)
    if name == "biformer_tiny":
        return BiFormerStride16(**kwargs)
    raise ValueError(f"unknown backbone {name!r}; expected convnet, vit or biformer_tiny")
