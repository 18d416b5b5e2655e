"""DCAL: Dual Cross-Attention Learning (Zhu et al., CVPR 2022) on top of a ViT-style token backbone.

No official code was released; this follows the paper's equations:

* **SA** branch: the backbone's L self-attention blocks, its CLS token classified by ``sa_head``.
* **GLCA** (Sec. 3.1): attention rollout ``S_hat_i = S_bar_i S_bar_{i-1} ... S_bar_1`` with
  ``S_bar_l = 0.5 * A_l + 0.5 * I`` (``A_l`` = head-averaged attention of block l); the CLS row of
  ``S_hat_L`` picks the top-R patch tokens (R = ``local_ratio`` of the patches: 10% classification, 30% re-ID).
  One GLCA block (M = 1, its own weights) takes [CLS + those R tokens] as queries and *all* tokens as
  keys/values, ``softmax(Q_l K_g^T / sqrt(d)) V_g``, on the output of SA block L; its CLS goes to ``glca_head``.
* **PWCA** (Sec. 3.2, training only): a second pass through the *same* SA blocks (T = L, shared weights) in which
  each block's keys/values are ``[K1; K2]``, ``[V1; V2]`` with image 2 a distractor from the batch (its SA-branch
  tokens at that layer) -- one softmax over both images. Its CLS is classified with image 1's label by the
  SA head.
* Loss (Sec. 3.3): uncertainty weighting ``0.5 * sum_i (exp(-w_i) L_i + w_i)`` over SA, GLCA, PWCA
  (``UncertaintyWeighting``).
* Inference: classification sums the SA and GLCA class probabilities (``predict_proba``); re-ID concatenates
  the two CLS embeddings (``embed``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from detection.layers import init_transformer_weights
from detection.registry import create_model, register_model
from detection.vit import VIT_VARIANTS, Attention, Mlp, VisionTransformer

__all__ = ["DCAL", "DCALOutput", "TokenBackbone", "UncertaintyWeighting", "attention_rollout", "dcal_vit"]


class TokenBackbone(Protocol):
    """What DCAL needs from a ViT-style backbone (``detection.vit.VisionTransformer`` provides it)."""

    embed_dim: int
    num_heads: int
    blocks: nn.ModuleList  # each: (x, context=None, need_weights=False) -> (x, head-averaged weights | None)
    norm: nn.Module

    def embed(self, x: Tensor) -> Tensor: ...


def attention_rollout(attentions: list[Tensor]) -> Tensor:
    """Accumulated attention ``prod_l (0.5 A_l + 0.5 I)`` (latest layer on the left), ``[B, N, N]``."""
    if not attentions:
        raise ValueError("attention_rollout needs at least one attention map")
    eye = torch.eye(attentions[0].shape[-1], device=attentions[0].device, dtype=attentions[0].dtype)
    rollout = eye.expand_as(attentions[0])
    for a in attentions:
        rollout = (0.5 * a + 0.5 * eye) @ rollout
    return rollout


def select_local_queries(rollout: Tensor, num_local: int) -> Tensor:
    """Token indices (into ``[CLS, patches]``) of the ``num_local`` patches the CLS row attends to most."""
    return rollout[:, 0, 1:].topk(num_local, dim=-1).indices + 1


class GLCABlock(nn.Module):
    """Pre-norm cross-attention block: local queries attend to all tokens, then an MLP (own weights)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, tokens: Tensor, local_index: Tensor) -> Tensor:
        """``tokens [B, 1 + N, C]``, ``local_index [B, R]`` -> updated [CLS + local] tokens ``[B, 1 + R, C]``."""
        b, _, c = tokens.shape
        index = torch.cat([local_index.new_zeros(b, 1), local_index], dim=1)
        local = tokens.gather(1, index.unsqueeze(-1).expand(-1, -1, c))
        out, _ = self.attn.attend(self.norm1(local), self.norm1(tokens))
        local = local + out
        return local + self.mlp(self.norm2(local))


@dataclass
class DCALOutput:
    """Per-branch logits and CLS embeddings; PWCA fields are ``None`` outside training."""

    sa_logits: Tensor
    glca_logits: Tensor
    sa_embedding: Tensor
    glca_embedding: Tensor
    local_index: Tensor
    pwca_logits: Tensor | None = None
    pwca_embedding: Tensor | None = None


class DCAL(nn.Module):
    """SA + GLCA (+ PWCA while training) over a token backbone, with one classifier per branch."""

    def __init__(
        self, backbone: TokenBackbone, num_classes: int, local_ratio: float = 0.1, pwca: bool = True
    ) -> None:
        super().__init__()
        if not 0.0 < local_ratio <= 1.0:
            raise ValueError(f"local_ratio must be in (0, 1], got {local_ratio}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.backbone = backbone
        self.local_ratio, self.use_pwca = local_ratio, pwca
        dim = backbone.embed_dim
        self.glca = GLCABlock(dim, backbone.num_heads)
        self.glca_norm = nn.LayerNorm(dim, eps=1e-6)
        self.sa_head = nn.Linear(dim, num_classes)
        self.glca_head = nn.Linear(dim, num_classes)
        for m in (self.glca, self.glca_norm, self.sa_head, self.glca_head):
            m.apply(init_transformer_weights)

    def num_local(self, num_patches: int) -> int:
        return max(1, math.ceil(self.local_ratio * num_patches))

    def forward(self, images: Tensor, distractor_index: Tensor | None = None) -> DCALOutput:
        """``distractor_index[b]`` names the batch image paired with image b for PWCA (training only);
        by default a random other image of the batch."""
        tokens = self.backbone.embed(images)
        pwca = self.training and self.use_pwca and images.shape[0] > 1
        if pwca and distractor_index is None:
            b = images.shape[0]
            distractor_index = (torch.arange(b) + torch.randint(1, b, (b,))) % b
        sa, pw, attentions = tokens, tokens, []
        for blk in self.backbone.blocks:
            if pwca:
                pw, _ = blk(pw, context=sa[distractor_index.to(sa.device)])
            sa, weights = blk(sa, need_weights=True)
            attentions.append(weights)
        local_index = select_local_queries(attention_rollout(attentions), self.num_local(tokens.shape[1] - 1))
        sa_cls = self.backbone.norm(sa)[:, 0]
        glca_cls = self.glca_norm(self.glca(sa, local_index))[:, 0]
        out = DCALOutput(self.sa_head(sa_cls), self.glca_head(glca_cls), sa_cls, glca_cls, local_index)
        if pwca:
            out.pwca_embedding = self.backbone.norm(pw)[:, 0]
            out.pwca_logits = self.sa_head(out.pwca_embedding)
        return out

    @torch.no_grad()
    def predict_proba(self, images: Tensor) -> Tensor:
        """Classification inference: SA + GLCA class probabilities (sum of the two softmaxes)."""
        out = self(images)
        return out.sa_logits.softmax(-1) + out.glca_logits.softmax(-1)

    @torch.no_grad()
    def embed(self, images: Tensor) -> Tensor:
        """Re-ID inference: concatenated SA and GLCA CLS embeddings ``[B, 2C]``."""
        out = self(images)
        return torch.cat([out.sa_embedding, out.glca_embedding], dim=-1)


class UncertaintyWeighting(nn.Module):
    """Kendall et al. (2018) weighting used by DCAL: ``0.5 * sum_i (exp(-w_i) L_i + w_i)``, w_i learned."""

    def __init__(self, num_terms: int = 3) -> None:
        super().__init__()
        self.log_vars = nn.Parameter(torch.zeros(num_terms))

    def forward(self, losses: list[Tensor]) -> Tensor:
        if len(losses) > self.log_vars.numel():
            raise ValueError(f"got {len(losses)} loss terms for {self.log_vars.numel()} weights")
        w = self.log_vars[: len(losses)]
        return 0.5 * (torch.exp(-w) * torch.stack(losses) + w).sum()


def dcal_vit(
    variant: str = "small",
    num_classes: int = 1000,
    local_ratio: float = 0.1,
    checkpoint_path: str | None = None,
    **vit_kwargs: object,
) -> DCAL:
    """DCAL over a DeiT-style ViT (``tiny`` | ``small`` | ``base``); ``checkpoint_path`` loads ViT/DeiT weights."""
    if variant not in VIT_VARIANTS:
        raise ValueError(f"unknown ViT variant {variant!r}; expected one of {sorted(VIT_VARIANTS)}")
    backbone: VisionTransformer = create_model(
        "classifier", f"vit_{variant}_patch16", num_classes=0, checkpoint_path=checkpoint_path, **vit_kwargs
    )
    return DCAL(backbone, num_classes, local_ratio)


@register_model("classifier")
def dcal_vit_tiny(num_classes: int = 1000, **kwargs: object) -> DCAL:
    """DCAL over DeiT-Ti (``dcal_vit`` with variant ``tiny``)."""
    return dcal_vit("tiny", num_classes, **kwargs)


@register_model("classifier")
def dcal_vit_small(num_classes: int = 1000, **kwargs: object) -> DCAL:
    """DCAL over DeiT-S (``dcal_vit`` with variant ``small``)."""
    return dcal_vit("small", num_classes, **kwargs)


@register_model("classifier")
def dcal_vit_base(num_classes: int = 1000, **kwargs: object) -> DCAL:
    """DCAL over DeiT-B (``dcal_vit`` with variant ``base``)."""
    return dcal_vit("base", num_classes, **kwargs)
