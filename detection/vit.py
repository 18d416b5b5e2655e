"""Plain ViT / DeiT token backbone (Dosovitskiy et al. 2021; Touvron et al. 2021) for DCAL.

Parameter names follow timm's ``VisionTransformer`` (``patch_embed.proj``, ``cls_token``, ``pos_embed``,
``blocks.i.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``, ``head``), so DeiT/ViT checkpoints
a user downloads load with ``load_vit_checkpoint`` (position embeddings resized to the input grid).

The token-backbone interface DCAL relies on (``detection.dcal.TokenBackbone``): ``embed(images)`` gives
``[B, 1 + N, C]`` tokens (CLS first), ``blocks`` are applied one by one as ``block(x, context, need_weights)``,
``norm`` is the final LayerNorm, and ``embed_dim`` / ``num_heads`` describe the width.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from detection.layers import DropPath, init_transformer_weights
from detection.pretrained import load_released_weights
from detection.registry import register_model

__all__ = [
    "VisionTransformer",
    "load_vit_checkpoint",
    "resize_pos_embed",
    "vit_base_patch16",
    "vit_small_patch16",
    "vit_tiny_patch16",
]


class Attention(nn.Module):
    """Multi-head attention; ``context`` tokens are appended to the keys/values (one softmax over both).

    With ``context=None`` this is self-attention. DCAL's PWCA passes a distractor image's (normed) tokens as
    ``context``: ``softmax(Q1 [K1; K2]^T / sqrt(d)) [V1; V2]`` with the same projection weights.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, x: Tensor, context: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """Returns the output ``[B, N, C]`` and, if asked, head-averaged weights ``[B, N, N (+ M)]``."""
        return self.attend(x, x if context is None else torch.cat([x, context], dim=1), need_weights)

    def attend(self, x: Tensor, kv: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """Queries from ``x [B, N, C]``, keys/values from ``kv [B, M, C]`` (same projection weights)."""
        b, n, c = x.shape
        h = self.num_heads
        w_q, w_kv = self.qkv.weight.split([c, 2 * c])
        b_q, b_kv = (None, None) if self.qkv.bias is None else self.qkv.bias.split([c, 2 * c])
        q = F.linear(x, w_q, b_q).view(b, n, h, c // h).transpose(1, 2)
        k, v = F.linear(kv, w_kv, b_kv).view(b, kv.shape[1], 2, h, c // h).permute(2, 0, 3, 1, 4)
        if need_weights:
            attn = ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
            out, weights = attn @ v, attn.mean(1)
        else:
            out, weights = F.scaled_dot_product_attention(q, k, v), None
        return self.proj(out.transpose(1, 2).reshape(b, n, c)), weights


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block; ``context`` (raw tokens of another image) is normed with ``norm1`` too."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(
        self, x: Tensor, context: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        ctx = None if context is None else self.norm1(context)
        out, weights = self.attn(self.norm1(x), ctx, need_weights)
        x = x + self.drop_path(out)
        return x + self.drop_path(self.mlp(self.norm2(x))), weights


class VisionTransformer(nn.Module):
    """ViT with a CLS token and learned position embeddings, resized on the fly for other input sizes.

    ``stem="patch"`` is the ViT/DeiT patchify conv (loads their checkpoints); ``stem="conv"`` an early-conv stem
    for training from scratch on small data.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        stem: str = "patch",
    ) -> None:
        super().__init__()
        if stem not in ("patch", "conv"):
            raise ValueError(f"stem must be 'patch' (ViT/DeiT) or 'conv' (Xiao et al. 2021), got {stem!r}")
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.patch_size, self.embed_dim, self.num_heads = patch_size, embed_dim, num_heads
        self.grid = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        self.patch_embed = nn.Module()
        if stem == "conv":
            self.patch_embed.stem = _conv_stem(in_chans, embed_dim, patch_size)
            self.patch_embed.proj = nn.Conv2d(embed_dim, embed_dim, 1)
        else:
            self.patch_embed.stem = nn.Identity()
            self.patch_embed.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], embed_dim))
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, r) for r in rates)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(init_transformer_weights)

    def _pos_embed(self, grid: tuple[int, int]) -> Tensor:
        return self.pos_embed if grid == self.grid else resize_pos_embed(self.pos_embed, self.grid, grid)

    def embed(self, x: Tensor) -> Tensor:
        """Images ``[B, C, H, W]`` (H, W multiples of the patch size) -> tokens ``[B, 1 + N, C]``."""
        if x.dim() != 4 or x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ValueError(
                f"expected images [B, C, H, W] with H, W multiples of {self.patch_size}, got {tuple(x.shape)}"
            )
        x = self.patch_embed.proj(self.patch_embed.stem(x))
        grid = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + self._pos_embed(grid)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.embed(x)
        for blk in self.blocks:
            x, _ = blk(x)
        return self.norm(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x)[:, 0])


def resize_pos_embed(pos_embed: Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int]) -> Tensor:
    """``[1, 1 + h*w, C]`` -> ``[1, 1 + h'*w', C]``: bicubic resize of the patch part, CLS entry kept."""
    cls, patch = pos_embed[:, :1], pos_embed[:, 1:]
    patch = patch.reshape(1, *old_grid, -1).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, size=new_grid, mode="bicubic", align_corners=False)
    return torch.cat([cls, patch.flatten(2).transpose(1, 2)], dim=1)


def _conv_stem(in_chans: int, embed_dim: int, patch_size: int) -> nn.Sequential:
    """Early-convolution stem (Xiao et al. 2021): log2(patch) stride-2 3x3 conv-BN-ReLU, widths doubling up to
    ``embed_dim``; with the 1x1 ``proj`` after it, it replaces the patchify conv and trains far more easily
    from scratch (DCAL's paper fine-tunes ImageNet weights instead)."""
    steps = patch_size.bit_length() - 1
    if patch_size < 2 or 1 << steps != patch_size:
        raise ValueError(f"the conv stem needs a power-of-two patch_size >= 2, got {patch_size}")
    layers: list[nn.Module] = []
    c_in = in_chans
    for i in range(steps):
        c_out = max(8, embed_dim >> (steps - 1 - i))
        layers += [
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
        ]
        c_in = c_out
    return nn.Sequential(*layers)


def load_vit_checkpoint(model: VisionTransformer, path: str | Path) -> list[str]:
    """Load a timm/DeiT-named checkpoint (``{"model": ...}`` or bare), resizing ``pos_embed`` to the model grid.

    A head of another shape is skipped; returns the names left at their initial values.
    """

    def resize_grid(state: dict[str, Tensor], own: dict[str, Tensor]) -> None:
        if "pos_embed" in state and state["pos_embed"].shape != own["pos_embed"].shape:
            pe = state["pos_embed"]
            side = math.isqrt(pe.shape[1] - 1)
            if side * side != pe.shape[1] - 1:
                raise ValueError(
                    f"cannot resize a non-square checkpoint position grid of {pe.shape[1] - 1} tokens"
                )
            state["pos_embed"] = resize_pos_embed(pe, (side, side), model.grid)

    return load_released_weights(model, path, what="ViT checkpoint", adapt=resize_grid)


VIT_VARIANTS: dict[str, dict[str, Any]] = {
    "tiny": {"embed_dim": 192, "depth": 12, "num_heads": 3},
    "small": {"embed_dim": 384, "depth": 12, "num_heads": 6},
    "base": {"embed_dim": 768, "depth": 12, "num_heads": 12},
}


def _build(
    variant: str, num_classes: int, checkpoint_path: str | Path | None, **kwargs: Any
) -> VisionTransformer:
    model = VisionTransformer(**{**VIT_VARIANTS[variant], **kwargs}, num_classes=num_classes)
    if checkpoint_path is not None:
        load_vit_checkpoint(model, checkpoint_path)
    return model


@register_model("classifier")
def vit_tiny_patch16(
    num_classes: int = 1000, checkpoint_path: str | Path | None = None, **kwargs: Any
) -> VisionTransformer:
    """DeiT-Ti / ViT-Ti/16: width 192, 12 blocks, 3 heads (5.7M parameters)."""
    return _build("tiny", num_classes, checkpoint_path, **kwargs)


@register_model("classifier")
def vit_small_patch16(
    num_classes: int = 1000, checkpoint_path: str | Path | None = None, **kwargs: Any
) -> VisionTransformer:
    """DeiT-S / ViT-S/16: width 384, 12 blocks, 6 heads (22.1M parameters) -- DCAL's main backbone."""
    return _build("small", num_classes, checkpoint_path, **kwargs)


@register_model("classifier")
def vit_base_patch16(
    num_classes: int = 1000, checkpoint_path: str | Path | None = None, **kwargs: Any
) -> VisionTransformer:
    """DeiT-B / ViT-B/16: width 768, 12 blocks, 12 heads (86.6M parameters)."""
    return _build("base", num_classes, checkpoint_path, **kwargs)
