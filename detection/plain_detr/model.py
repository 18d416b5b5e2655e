"""Plain-DETR (Lin et al., ICCV 2023) as named stages, like mmdet's ``DetectionTransformer``:
``extract_feat -> pre_transformer -> pre_decoder -> forward_decoder -> heads``. No transformer encoder."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from detection.plain_detr.config import PlainDETRConfig
from detection.plain_detr.decoder import MLP, GlobalDecoder
from detection.plain_detr.proposals import ProposalGenerator, proposal_pos_embed
from detection.registry import create_model


@dataclass
class MemoryInputs:
    """Output of :meth:`PlainDETR.pre_transformer`: the flattened stride-16 map and what attention needs of it."""

    memory: Tensor  # [B, HW, C]
    pos: Tensor  # [B, HW, C]
    mask: Tensor  # [B, HW] True = padding
    feat_hw: tuple[int, int]
    image_wh: Tensor  # [B, 2] valid (unpadded) image size in pixels


@dataclass
class DecoderInputs:
    """Output of :meth:`PlainDETR.pre_decoder`: selected queries and the two-stage proposal outputs."""

    tgt: Tensor  # [B, Q, C] content queries (mixed selection: learned)
    query_pos: Tensor  # [B, Q, C] from the selected proposal boxes
    init_boxes: Tensor  # [B, Q, 4] cxcywh in [0, 1], detached
    enc_logits: Tensor  # [B, N, 1] objectness of every anchor
    enc_boxes: Tensor  # [B, N, 4] refined anchors


def sine_position_embedding(mask: Tensor, d_model: int, temperature: float = 10000.0) -> Tensor:
    """DETR's normalised 2-D sine embedding of a ``[B, H, W]`` padding mask -> ``[B, HW, d_model]``."""
    not_mask = (~mask).to(torch.float32)
    y = not_mask.cumsum(1)
    x = not_mask.cumsum(2)
    eps, scale = 1e-6, 2 * math.pi
    y = (y - 0.5) / (y[:, -1:, :] + eps) * scale
    x = (x - 0.5) / (x[:, :, -1:] + eps) * scale
    num_feats = d_model // 2
    dim_t = torch.arange(num_feats, device=mask.device, dtype=torch.float32)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    px, py = x[..., None] / dim_t, y[..., None] / dim_t
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), -1).flatten(3)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), -1).flatten(3)
    return torch.cat((py, px), -1).flatten(1, 2)


def hybrid_self_attn_mask(num_one2one: int, num_one2many: int, device: torch.device) -> Tensor:
    """``[Q, Q]`` bool, True = blocked: the one-to-one and one-to-many groups never see each other (H-DETR)."""
    n = num_one2one + num_one2many
    mask = torch.zeros(n, n, dtype=torch.bool, device=device)
    mask[num_one2one:, :num_one2one] = True
    mask[:num_one2one, num_one2one:] = True
    return mask


class PlainDETR(nn.Module):
    """Images ``[B, 3, H, W]`` float in [0, 1] RGB (+ optional padding mask ``[B, H, W]``, True = pad) ->
    per-layer logits ``[B, Q, K]`` and boxes ``[B, Q, 4]`` (cxcywh normalised to each valid image).

    Training runs ``num_queries_one2one + num_queries_one2many`` queries under the group mask; eval runs only the
    one-to-one group, which gives the same one-to-one outputs because the groups cannot see each other.
    """

    def __init__(self, config: PlainDETRConfig, backbone: nn.Module | None = None) -> None:
        """``backbone``: a prebuilt stride-16 module with ``out_channels`` (e.g. one from mmdet's registry, see
        ``detection/mmdet_plugin.py``) used instead of ``config.backbone``."""
        super().__init__()
        cfg = self.config = config
        c = cfg.d_model
        if backbone is None:
            backbone = create_model("detr_backbone", cfg.backbone, **cfg.backbone_kwargs)
        self.backbone = backbone
        self.input_proj = nn.Sequential(nn.Conv2d(self.backbone.out_channels, c, 1), nn.GroupNorm(32, c))
        self.proposals = ProposalGenerator(c, cfg.feature_stride, cfg.proposal_strides)
        self.pos_trans = nn.Linear(2 * c, 2 * c)
        self.pos_trans_norm = nn.LayerNorm(2 * c)
        self.query_embed = nn.Embedding(cfg.num_queries, c)  # mixed selection: learned content queries
        self.decoder = GlobalDecoder(
            cfg.num_layers,
            c,
            cfg.num_heads,
            cfg.ffn_dim,
            cfg.dropout,
            cfg.rpe_type,
            cfg.rpe_hidden_dim,
            cfg.feature_stride,
            cfg.attention_backend,
        )
        self.class_heads = nn.ModuleList(nn.Linear(c, cfg.num_classes) for _ in range(cfg.num_layers))
        self.box_heads = nn.ModuleList(MLP(c, c, 4, 3) for _ in range(cfg.num_layers))
        self.enc_class_head = nn.Linear(c, 1)
        self.enc_box_head = MLP(c, c, 4, 3)
        self.register_buffer("pixel_mean", torch.tensor(cfg.pixel_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.pixel_std).view(1, 3, 1, 1), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        # Official PlainDETR / Transformer init: xavier for the projections, prior-0.01 class bias, zero box deltas.
        for module in (self.proposals, self.pos_trans):
            for p in module.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        nn.init.xavier_uniform_(self.input_proj[0].weight)
        nn.init.zeros_(self.input_proj[0].bias)
        bias = -math.log((1 - 0.01) / 0.01)
        for head in [*self.class_heads, self.enc_class_head]:
            nn.init.constant_(head.bias, bias)
        for head in [*self.box_heads, self.enc_box_head]:
            nn.init.zeros_(head.layers[-1].weight)
            nn.init.zeros_(head.layers[-1].bias)

    # ---- stages ------------------------------------------------------------------------------------------------
    def extract_feat(self, images: Tensor) -> Tensor:
        """Normalise and run the backbone -> ``[B, C_backbone, H/16, W/16]``."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W] float in [0, 1], got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(f"images must be floating point in [0, 1], got {images.dtype}")
        return self.backbone((images - self.pixel_mean) / self.pixel_std)

    def pre_transformer(
        self, feat: Tensor, pad_mask: Tensor | None, image_hw: tuple[int, int]
    ) -> MemoryInputs:
        """1x1 projection + GroupNorm to ``d_model``, flatten, sine positions, feature-level padding mask, and the
        valid image size in pixels (from the pixel mask, so boxes normalised to the image map exactly to pixels;
        the official code rounds it to whole feature cells)."""
        b, _, h, w = feat.shape
        if pad_mask is None:
            mask = torch.zeros(b, h, w, dtype=torch.bool, device=feat.device)
            image_wh = feat.new_tensor([image_hw[1], image_hw[0]]).expand(b, 2)
        else:
            mask = F.interpolate(pad_mask[:, None].float(), size=(h, w)).to(torch.bool)[:, 0]
            image_wh = torch.stack(((~pad_mask[:, 0, :]).sum(1), (~pad_mask[:, :, 0]).sum(1)), -1).clamp(
                min=1
            )
        x = self.input_proj(feat)
        return MemoryInputs(
            memory=x.flatten(2).transpose(1, 2),
            pos=sine_position_embedding(mask, self.config.d_model).to(x.dtype),
            mask=mask.flatten(1),
            feat_hw=(h, w),
            image_wh=image_wh.to(x.dtype),
        )

    def pre_decoder(self, mem: MemoryInputs, num_queries: int) -> DecoderInputs:
        """Two-stage query selection: score every anchor, keep the top ``num_queries`` refined boxes as reference
        boxes (detached) and their sine embedding as query positions; contents are learned (mixed selection)."""
        enc_feat, anchors, valid = self.proposals(mem.memory, mem.mask, mem.feat_hw, mem.image_wh)
        if anchors.shape[1] < num_queries:
            raise ValueError(
                f"{num_queries} queries need as many proposals, but this image gives {anchors.shape[1]}: "
                "use larger images, more proposal_strides, or fewer queries"
            )
        enc_logits = self.enc_class_head(enc_feat)
        enc_unact = self.enc_box_head(enc_feat) + anchors
        # Deviation, documented: invalid anchors are never selected (the official code may pick them at borders).
        score = enc_logits[..., 0].masked_fill(~valid, float("-inf"))
        top = torch.topk(score, num_queries, dim=1).indices
        init_boxes = torch.gather(enc_unact, 1, top[..., None].expand(-1, -1, 4)).detach().sigmoid()
        pos = self.pos_trans_norm(self.pos_trans(proposal_pos_embed(init_boxes, self.config.d_model)))
        query_pos = pos[..., : self.config.d_model]
        b = init_boxes.shape[0]
        tgt = self.query_embed.weight[:num_queries][None].expand(b, -1, -1)
        return DecoderInputs(tgt, query_pos, init_boxes, enc_logits, enc_unact.sigmoid())

    def forward_decoder(
        self, mem: MemoryInputs, dec: DecoderInputs, self_attn_mask: Tensor | None
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Decoder layers + heads -> per-layer ``logits [B, Q, K]`` and ``boxes [B, Q, 4]``."""
        feats, boxes = self.decoder(
            dec.tgt,
            dec.query_pos,
            dec.init_boxes,
            mem.memory,
            mem.pos,
            mem.feat_hw,
            mem.image_wh,
            self.box_heads,
            mem.mask,
            self_attn_mask,
        )
        logits = [head(f) for head, f in zip(self.class_heads, feats, strict=True)]
        return logits, boxes

    # ---- whole model -------------------------------------------------------------------------------------------
    def forward(self, images: Tensor, pad_mask: Tensor | None = None) -> dict[str, object]:
        """Training: ``{"one2one": [(logits, boxes)] per layer, "one2many": [...], "enc": (logits, boxes)}``.
        Eval: the same without ``one2many`` (only the one-to-one queries are run)."""
        cfg = self.config
        if pad_mask is not None and pad_mask.shape != (images.shape[0], *images.shape[-2:]):
            raise ValueError(f"pad_mask must be [B, H, W] = {(images.shape[0], *images.shape[-2:])}")
        mem = self.pre_transformer(self.extract_feat(images), pad_mask, images.shape[-2:])
        hybrid = self.training and cfg.num_queries_one2many > 0
        n = cfg.num_queries if hybrid else cfg.num_queries_one2one
        dec = self.pre_decoder(mem, n)
        mask = (
            hybrid_self_attn_mask(cfg.num_queries_one2one, cfg.num_queries_one2many, images.device)
            if hybrid
            else None
        )
        logits, boxes = self.forward_decoder(mem, dec, mask)
        k = cfg.num_queries_one2one
        out: dict[str, object] = {
            "one2one": [(lg[:, :k], bx[:, :k]) for lg, bx in zip(logits, boxes, strict=True)],
            "enc": (dec.enc_logits, dec.enc_boxes),
        }
        if hybrid:
            out["one2many"] = [(lg[:, k:], bx[:, k:]) for lg, bx in zip(logits, boxes, strict=True)]
        return out

    def predict_raw(self, images: Tensor, pad_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Last-layer one-to-one ``logits [B, Q, K]`` and ``boxes [B, Q, 4]`` (the exported inference graph)."""
        mem = self.pre_transformer(self.extract_feat(images), pad_mask, images.shape[-2:])
        dec = self.pre_decoder(mem, self.config.num_queries_one2one)
        logits, boxes = self.forward_decoder(mem, dec, None)
        return logits[-1], boxes[-1]
