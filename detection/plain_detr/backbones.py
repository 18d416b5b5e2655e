"""Single-scale stride-16 backbones: a small conv net (tests, demo, ablation), a plain ViT, and BiFormer.

Plain-DETR needs one feature map at stride 16 (paper Sec. 3: the last map of a plain ViT, no FPN); every backbone
here returns ``[B, out_channels, ceil(H/16), ceil(W/16)]`` from ``[B, 3, H, W]``.
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor, nn

from detection.registry import register_model
from detection.vit import VisionTransformer, load_vit_checkpoint


@register_model("detr_backbone", "convnet")
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


@register_model("detr_backbone", "vit")
class PlainViT(nn.Module):
    """Plain-DETR's plain backbone: the package's ViT (``detection.vit``, global attention, learned position
    embeddings resized to each input's grid) whose last patch tokens are the stride-16 map. ``checkpoint_path``
    loads released ViT/DeiT ImageNet weights (timm names), the paper's way of starting the backbone."""

    def __init__(
        self, embed_dim: int = 192, depth: int = 4, num_heads: int = 3, mlp_ratio: float = 4.0,
        img_size: int = 224, drop_path_rate: float = 0.0, checkpoint_path: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.body = VisionTransformer(
            img_size=img_size, patch_size=16, num_classes=0, embed_dim=embed_dim, depth=depth,
            num_heads=num_heads, mlp_ratio=mlp_ratio, drop_path_rate=drop_path_rate,
        )  # fmt: skip
        if checkpoint_path is not None:
            load_vit_checkpoint(self.body, checkpoint_path)
        self.out_channels = embed_dim

    def forward(self, x: Tensor) -> Tensor:
        h_pad, w_pad = (-x.shape[-2]) % 16, (-x.shape[-1]) % 16
        x = nn.functional.pad(x, (0, w_pad, 0, h_pad))
        tokens = self.body.forward_features(x)[:, 1:]
        b, (h, w) = x.shape[0], (x.shape[-2] // 16, x.shape[-1] // 16)
        return tokens.transpose(1, 2).reshape(b, self.out_channels, h, w)


@register_model("detr_backbone", "biformer_tiny")
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
