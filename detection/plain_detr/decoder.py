"""Plain-DETR's global decoder: pre-norm layers (self-attn, BoxRPB cross-attn, FFN), box refinement, and
look-forward-twice (official ``GlobalDecoder`` / ``GlobalDecoderLayer``, paper Sec. 3)."""

from __future__ import annotations

import itertools

from torch import Tensor, nn

from detection.layers import init_transformer_weights
from detection.plain_detr.box_ops import inverse_sigmoid
from detection.plain_detr.boxrpb import GlobalCrossAttention


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between (DETR's box head)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else layer(x).relu()
        return x


class DecoderLayer(nn.Module):
    """Pre-norm: ``x += SelfAttn(LN(x)+pos)``; ``x += CrossAttn(LN(x)+pos, memory+pos_mem, BoxRPB(ref))``;
    ``x += FFN(LN(x))`` (official ``forward_pre``)."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        ffn_dim: int,
        dropout: float,
        rpe_type: str,
        rpe_hidden: int,
        stride: int,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = GlobalCrossAttention(d_model, num_heads, rpe_type, rpe_hidden, stride, backend)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, d_model)
        )
        self.norm_self, self.norm_cross, self.norm_ffn = (nn.LayerNorm(d_model) for _ in range(3))
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        tgt: Tensor,
        query_pos: Tensor,
        ref_boxes: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        feat_hw: tuple[int, int],
        image_wh: Tensor,
        memory_mask: Tensor | None,
        self_attn_mask: Tensor | None,
    ) -> Tensor:
        x = self.norm_self(tgt)
        qk = x + query_pos
        tgt = tgt + self.drop(self.self_attn(qk, qk, x, attn_mask=self_attn_mask, need_weights=False)[0])
        x = self.norm_cross(tgt)
        x = self.cross_attn(
            x + query_pos, ref_boxes, memory + memory_pos, memory, feat_hw, image_wh, memory_mask
        )
        tgt = tgt + self.drop(x)
        return tgt + self.drop(self.ffn(self.norm_ffn(tgt)))


class GlobalDecoder(nn.Module):
    def __init__(
        self,
        num_layers: int,
        d_model: int,
        num_heads: int,
        ffn_dim: int,
        dropout: float,
        rpe_type: str,
        rpe_hidden: int,
        stride: int,
        backend: str = "auto",
        look_forward_twice: bool = True,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DecoderLayer(d_model, num_heads, ffn_dim, dropout, rpe_type, rpe_hidden, stride, backend)
            for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(d_model)
        self.look_forward_twice = look_forward_twice
        self.apply(init_transformer_weights)  # as the official GlobalDecoder._reset_parameters

    def forward(
        self,
        tgt: Tensor,
        query_pos: Tensor,
        init_boxes: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        feat_hw: tuple[int, int],
        image_wh: Tensor,
        reg_branches: nn.ModuleList,
        memory_mask: Tensor | None = None,
        self_attn_mask: Tensor | None = None,
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Returns per layer the normed query features ``[B, Q, C]`` and boxes ``[B, Q, 4]`` (cxcywh, sigmoid).

        Box refinement: layer ``l`` refines ``r_l = sigmoid(delta_l + logit(r_{l-1}.detach()))`` and feeds
        ``r_l.detach()`` to layer ``l+1``. Look-forward-twice (official ``look_forward_twice``): the box *reported*
        by layer ``l`` is ``sigmoid(delta_l + logit(r_{l-1}))`` with ``r_{l-1}`` not detached, so the loss of
        layer ``l`` also trains the box head of layer ``l-1`` (one step back, not the whole chain).
        """
        if len(reg_branches) != len(self.layers):
            raise ValueError(f"need {len(self.layers)} box heads, got {len(reg_branches)}")
        feats, boxes = [], []
        ref = init_boxes.detach()
        prev_ref = ref
        for layer, reg in zip(self.layers, reg_branches, strict=True):
            tgt = layer(
                tgt, query_pos, ref, memory, memory_pos, feat_hw, image_wh, memory_mask, self_attn_mask
            )
            normed = self.final_norm(tgt)
            delta = reg(normed)
            new_ref = (delta + inverse_sigmoid(ref)).sigmoid()
            reported = (delta + inverse_sigmoid(prev_ref)).sigmoid() if self.look_forward_twice else new_ref
            feats.append(normed)
            boxes.append(reported)
            ref, prev_ref = new_ref.detach(), new_ref
        return feats, boxes
