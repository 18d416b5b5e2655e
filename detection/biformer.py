"""BiFormer (Zhu et al., CVPR 2023): vision transformer with bi-level routing attention (BRA).

Parameter names and shapes follow the official ``rayleizhu/BiFormer`` (``models/biformer.py``,
``ops/bra_legacy.py``, ``models/_common.py``), so the released ImageNet checkpoints load with
``load_official_checkpoint``. Differences from the official code are in *how* BRA is computed, not *what*:
the routed key/value gather (official ``KVGather``, ``topk`` copies of K/V) is replaced by
``kernels.routed_attention`` on region-major tokens.

Behaviour kept from the official implementation (checked in ``tests/detection/test_biformer.py``):

* routing: region-mean queries/keys, logits ``(q_r * scale) @ k_r^T`` on *detached* tensors, hard top-k;
* the scale quirk: BRA scales by ``qk_dim ** -0.5`` (the full qk width, not the head width), stage 4's
  full attention by ``(dim // 8) ** -0.5`` with a fixed 8 heads;
* LCE/LePE: a depthwise ``side_dwconv`` conv on V over the whole (padded) map in BRA, on the block input
  in the stage-4 ``AttentionLePE``;
* ``pos_embed`` depthwise 3x3 conv before every block, LayerNorm eps 1e-6, pre-norm, MLP ratio 3;
* auto-padding (bottom/right zeros before the qkv projection, crop after) so any input size works.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import kernels
from detection.layers import DropPath, init_transformer_weights
from detection.pretrained import load_released_weights
from detection.registry import register_model

__all__ = [
    "AttentionLePE",
    "BiFormer",
    "BiLevelRoutingAttention",
    "biformer_base",
    "biformer_small",
    "biformer_tiny",
    "load_official_checkpoint",
]


class QKVLinear(nn.Module):
    """One linear to ``[q (qk_dim) | k (qk_dim) | v (dim)]``; official name ``attn.qkv.qkv``."""

    def __init__(self, dim: int, qk_dim: int) -> None:
        super().__init__()
        self.dim, self.qk_dim = dim, qk_dim
        self.qkv = nn.Linear(dim, 2 * qk_dim + dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.qkv(x).split([self.qk_dim, self.qk_dim, self.dim], dim=-1)


def _to_regions(x: Tensor, n_win: int) -> Tensor:
    """``[N, H, W, C]`` -> ``[N, R, T, C]`` with R = n_win^2 regions (row-major), T tokens each (row-major)."""
    n, h, w, c = x.shape
    x = x.view(n, n_win, h // n_win, n_win, w // n_win, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, n_win * n_win, (h // n_win) * (w // n_win), c)


def _from_regions(x: Tensor, n_win: int, h: int, w: int) -> Tensor:
    """Inverse of ``_to_regions``: ``[N, R, T, C]`` -> ``[N, H, W, C]``."""
    n, _, _, c = x.shape
    x = x.view(n, n_win, n_win, h // n_win, w // n_win, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h, w, c)


def _heads(x: Tensor, num_heads: int) -> Tensor:
    """``[N, R, T, h*d]`` -> ``[N, h, R*T, d]`` (region-major, the layout ``kernels.routed_attention`` takes)."""
    n, r, t, c = x.shape
    return x.view(n, r * t, num_heads, c // num_heads).transpose(1, 2)


class BiLevelRoutingAttention(nn.Module):
    """Bi-level routing attention (paper Sec. 3.2; official ``ops/bra_legacy.py``), NHWC in and out.

    Region-level routing picks, per region, the ``topk`` regions whose mean key is most similar to its mean
    query; token-level attention then runs over the tokens of those regions only.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        n_win: int = 7,
        qk_dim: int | None = None,
        topk: int = 4,
        side_dwconv: int = 5,
        qk_scale: float | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.dim, self.n_win, self.num_heads = dim, n_win, num_heads
        self.qk_dim = qk_dim or dim
        if self.qk_dim != dim:
            raise ValueError(
                f"qk_dim ({self.qk_dim}) must equal dim ({dim}): routed_attention takes equal q/k/v widths"
            )
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        if not 0 < topk <= n_win * n_win:
            raise ValueError(f"topk must be in [1, n_win^2 = {n_win * n_win}], got {topk}")
        self.topk, self.backend = topk, backend
        self.scale = qk_scale or self.qk_dim**-0.5  # official quirk: full qk width, not per head
        self.lepe = nn.Conv2d(dim, dim, side_dwconv, padding=side_dwconv // 2, groups=dim)
        self.qkv = QKVLinear(dim, self.qk_dim)
        self.wo = nn.Linear(dim, dim)

    def route(self, q: Tensor, k: Tensor) -> Tensor:
        """Region routing: ``q, k [N, R, T, qk_dim]`` -> top-k region indices ``[N, R, topk]`` (no gradient)."""
        q_r, k_r = q.detach().mean(2), k.detach().mean(2)
        logits = (q_r * self.scale) @ k_r.transpose(-2, -1)
        return logits.topk(self.topk, dim=-1).indices

    def forward(self, x: Tensor) -> Tensor:
        n, h_in, w_in, _ = x.shape
        pad_b, pad_r = (-h_in) % self.n_win, (-w_in) % self.n_win
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        h, w = h_in + pad_b, w_in + pad_r
        q, k, v = self.qkv(_to_regions(x, self.n_win))
        topk_index = self.route(q, k)
        lepe = self.lepe(_from_regions(v, self.n_win, h, w).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        t = q.shape[2]
        out = kernels.routed_attention(
            _heads(q, self.num_heads),
            _heads(k, self.num_heads),
            _heads(v, self.num_heads),
            topk_index,
            t,
            scale=self.scale,
            backend=self.backend,
        )
        out = out.transpose(1, 2).reshape(n, self.n_win * self.n_win, t, self.dim)
        out = self.wo(_from_regions(out, self.n_win, h, w) + lepe)
        return out[:, :h_in, :w_in].contiguous() if (pad_b or pad_r) else out


class AttentionLePE(nn.Module):
    """Stage-4 full self-attention plus a depthwise-conv LePE on the input (official ``models/_common.py``).

    The official block builds it with its defaults: 8 heads, no qkv bias, scale ``(dim // 8) ** -0.5``.
    """

    def __init__(self, dim: int, num_heads: int = 8, side_dwconv: int = 5) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.lepe = nn.Conv2d(dim, dim, side_dwconv, padding=side_dwconv // 2, groups=dim)

    def forward(self, x: Tensor) -> Tensor:
        n, h, w, c = x.shape
        qkv = self.qkv(x.reshape(n, h * w, c)).view(n, h * w, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, h, w, c)
        lepe = self.lepe(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.proj(out + lepe)


class Block(nn.Module):
    """Depthwise-conv position embedding, then pre-norm attention and MLP residuals; NCHW in and out."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        topk: int,
        n_win: int,
        qk_dim: int,
        mlp_ratio: float = 3.0,
        side_dwconv: int = 5,
        drop_path: float = 0.0,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        if topk > 0:
            self.attn: nn.Module = BiLevelRoutingAttention(
                dim, num_heads, n_win, qk_dim, topk, side_dwconv, backend=backend
            )
        elif topk == -2:
            self.attn = AttentionLePE(dim, side_dwconv=side_dwconv)
        else:
            raise ValueError(f"topk must be > 0 (BRA) or -2 (full attention with LePE), got {topk}")
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(mlp_ratio * dim)
        # Index 1 is the official (disabled) mlp_dwconv slot, so the Linear layers stay ``mlp.0`` / ``mlp.3``.
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.Identity(), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = (x + self.pos_embed(x)).permute(0, 2, 3, 1)
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x.permute(0, 3, 1, 2)


def _stem(in_chans: int, dim: int) -> nn.Sequential:
    """Two overlapping 3x3 stride-2 convs (stride 4), official ``downsample_layers[0]``."""
    return nn.Sequential(
        nn.Conv2d(in_chans, dim // 2, 3, stride=2, padding=1),
        nn.BatchNorm2d(dim // 2),
        nn.GELU(),
        nn.Conv2d(dim // 2, dim, 3, stride=2, padding=1),
        nn.BatchNorm2d(dim),
    )


class BiFormer(nn.Module):
    """Four-stage BiFormer; a classifier, or with ``out_indices`` a feature backbone returning NCHW maps.

    ``forward`` returns logits ``[B, num_classes]`` (``num_classes=0``: pooled features ``[B, C4]``), or with
    ``out_indices`` a tuple of stage outputs at strides ``(4, 8, 16, 32)[i]``.
    """

    def __init__(
        self,
        depth: Sequence[int] = (2, 2, 8, 2),
        embed_dim: Sequence[int] = (64, 128, 256, 512),
        head_dim: int = 32,
        topks: Sequence[int] = (1, 4, 16, -2),
        n_win: int = 7,
        mlp_ratio: float = 3.0,
        side_dwconv: int = 5,
        in_chans: int = 3,
        num_classes: int = 1000,
        drop_path_rate: float = 0.0,
        out_indices: Sequence[int] | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if not len(depth) == len(embed_dim) == len(topks) == 4:
            raise ValueError("depth, embed_dim and topks need 4 entries (one per stage)")
        if out_indices is not None and not set(out_indices) <= {0, 1, 2, 3}:
            raise ValueError(f"out_indices must be a subset of 0..3, got {list(out_indices)}")
        self.num_classes = num_classes
        self.embed_dim = list(embed_dim)
        self.num_features = embed_dim[-1]
        self.out_indices = tuple(out_indices) if out_indices is not None else None
        self.downsample_layers = nn.ModuleList([_stem(in_chans, embed_dim[0])])
        for i in range(3):
            self.downsample_layers.append(
                nn.Sequential(
                    nn.Conv2d(embed_dim[i], embed_dim[i + 1], 3, stride=2, padding=1),
                    nn.BatchNorm2d(embed_dim[i + 1]),
                )
            )
        rates = torch.linspace(0, drop_path_rate, sum(depth)).tolist()
        self.stages = nn.ModuleList()
        for i in range(4):
            start = sum(depth[:i])
            blocks = [
                Block(
                    embed_dim[i],
                    embed_dim[i] // head_dim,
                    topks[i],
                    n_win,
                    embed_dim[i],
                    mlp_ratio,
                    side_dwconv,
                    rates[start + j],
                    backend,
                )
                for j in range(depth[i])
            ]
            self.stages.append(nn.Sequential(*blocks))
        self.norm = nn.BatchNorm2d(embed_dim[-1])
        self.head = nn.Linear(embed_dim[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.apply(init_transformer_weights)

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        """All four stage outputs (NCHW, before the final norm)."""
        if x.dim() != 4:
            raise ValueError(f"expected images [B, C, H, W], got shape {tuple(x.shape)}")
        feats = []
        for down, stage in zip(self.downsample_layers, self.stages, strict=True):
            x = stage(down(x))
            feats.append(x)
        return feats

    def forward_features(self, x: Tensor) -> Tensor:
        """Normed last-stage map ``[B, C4, H/32, W/32]`` (official ``forward_features``)."""
        return self.norm(self.forward_stages(x)[-1])

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        if self.out_indices is not None:
            feats = self.forward_stages(x)
            return tuple(feats[i] for i in self.out_indices)
        return self.head(self.forward_features(x).flatten(2).mean(-1))


_VARIANTS: dict[str, dict[str, Any]] = {
    "tiny": {"depth": (2, 2, 8, 2), "embed_dim": (64, 128, 256, 512)},
    "small": {"depth": (4, 4, 18, 4), "embed_dim": (64, 128, 256, 512)},
    "base": {"depth": (4, 4, 18, 4), "embed_dim": (96, 192, 384, 768)},
}


def load_official_checkpoint(model: BiFormer, path: str | Path) -> list[str]:
    """Load a released BiFormer checkpoint (``{"model": state_dict}`` or a bare state dict), safely.

    The classifier head is skipped when its shape differs (fine-tuning to another ``num_classes``); every other
    tensor must match by name and shape. Returns the names left at their initial values (the head, if skipped).
    """
    return load_released_weights(model, path, what="BiFormer checkpoint")


@register_model("classifier")
def biformer(num_classes: int = 1000, checkpoint_path: str | Path | None = None, **kwargs: Any) -> BiFormer:
    """BiFormer with explicit ``depth``, ``embed_dim``, ``topks`` and the rest of ``BiFormer``'s arguments."""
    model = BiFormer(num_classes=num_classes, **kwargs)
    if checkpoint_path is not None:
        load_official_checkpoint(model, checkpoint_path)
    return model


@register_model("classifier")
def biformer_tiny(
    num_classes: int = 1000, checkpoint_path: str | Path | None = None, **kwargs: Any
) -> BiFormer:
    """BiFormer-T: depths (2, 2, 8, 2), dims (64, 128, 256, 512); 13.1M parameters, 81.4% ImageNet top-1."""
    return biformer(num_classes, checkpoint_path, **_VARIANTS["tiny"], **kwargs)


@register_model("classifier")
def biformer_small(
    num_classes: int = 1000, checkpoint_path: str | Path | None = None, **kwargs: Any
) -> BiFormer:
    """BiFormer-S: depths (4, 4, 18, 4), dims (64, 128, 256, 512); 25.5M parameters, 83.8% ImageNet top-1."""
    return biformer(num_classes, checkpoint_path, **_VARIANTS["small"], **kwargs)


@register_model("classifier")
def biformer_base(
    num_classes: int = 1000, checkpoint_path: str | Path | None = None, **kwargs: Any
) -> BiFormer:
    """BiFormer-B: depths (4, 4, 18, 4), dims (96, 192, 384, 768); 56.8M parameters, 84.3% ImageNet top-1."""
    return biformer(num_classes, checkpoint_path, **_VARIANTS["base"], **kwargs)
