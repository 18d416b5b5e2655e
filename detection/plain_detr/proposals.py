"""Two-stage proposals from the single-scale map (official ``Transformer.gen_encoder_output_proposals`` with
``proposal_feature_levels=4``): the stride-16 memory is re-sampled to strides 8/16/32/64 by (transposed) 2x2 convs,
every location is an anchor box (centre of its cell, side ``0.05 * 2**level``), and a head scores and refines them."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm2d(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _rescale(d_model: int, in_stride: int, out_stride: int) -> nn.Module:
    if out_stride == in_stride:
        return nn.Identity()
    steps = round(abs(math.log2(out_stride / in_stride)))
    conv = nn.Conv2d if out_stride > in_stride else nn.ConvTranspose2d
    layers: list[nn.Module] = []
    for i in range(steps):
        layers.append(conv(d_model, d_model, kernel_size=2, stride=2))
        if i < steps - 1:
            layers += [LayerNorm2d(d_model), nn.GELU()]
    return nn.Sequential(*layers)


class ProposalGenerator(nn.Module):
    """Anchors per level, validity, and the ``enc_output`` projection that the proposal heads read."""

    def __init__(self, d_model: int, in_stride: int, strides: tuple[int, ...]) -> None:
        super().__init__()
        self.strides = tuple(strides)
        self.rescale = nn.ModuleList(_rescale(d_model, in_stride, s) for s in strides)
        self.min_cells = max(1, max(strides) // in_stride)
        self.enc_output = nn.Linear(d_model, d_model)
        self.enc_output_norm = nn.LayerNorm(d_model)

    def forward(
        self, memory: Tensor, mask: Tensor, feat_hw: tuple[int, int], image_wh: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``memory [B, HW, C]``, ``mask [B, HW]`` True=pad, ``image_wh [B, 2]`` valid image size in pixels ->
        ``(features [B, N, C], anchors_logit [B, N, 4], valid [B, N])`` over all levels. Anchor centres are the
        cell centres ``(j + 0.5) * stride`` divided by the valid image size in pixels (the official code divides by
        the count of valid cells, which is the same when sizes are multiples of the stride). Invalid anchors
        (padding, or centres outside (0.01, 0.99)) are ``inf`` and their features zero, as in the official code."""
        b, _, c = memory.shape
        h, w = feat_hw
        if min(h, w) < self.min_cells:
            raise ValueError(
                f"a {h}x{w} feature map is too small for proposals at stride x{self.min_cells}: "
                f"images need at least {self.min_cells} feature cells per side"
            )
        fmap = memory.transpose(1, 2).reshape(b, c, h, w)
        mask2d = mask.view(b, h, w)
        feats, anchors, pads = [], [], []
        img_w, img_h = image_wh[:, 0, None, None], image_wh[:, 1, None, None]
        for level, (rescale, stride) in enumerate(zip(self.rescale, self.strides, strict=True)):
            f = rescale(fmap)
            hl, wl = f.shape[-2:]
            m = F.interpolate(mask2d[:, None].float(), size=(hl, wl)).to(torch.bool)[:, 0]
            gy, gx = torch.meshgrid(
                torch.arange(hl, device=f.device, dtype=f.dtype),
                torch.arange(wl, device=f.device, dtype=f.dtype),
                indexing="ij",
            )
            cx = (gx[None] + 0.5) * stride / img_w
            cy = (gy[None] + 0.5) * stride / img_h
            side = torch.full_like(cx, 0.05 * 2.0**level)
            anchors.append(torch.stack((cx, cy, side, side), -1).flatten(1, 2))
            feats.append(f.flatten(2).transpose(1, 2))
            pads.append(m.flatten(1))
        anchors_t, feats_t, pad = torch.cat(anchors, 1), torch.cat(feats, 1), torch.cat(pads, 1)
        valid = ((anchors_t > 0.01) & (anchors_t < 0.99)).all(-1) & ~pad
        logits = torch.log(anchors_t / (1 - anchors_t)).masked_fill(~valid[..., None], float("inf"))
        feats_t = feats_t.masked_fill(~valid[..., None], 0.0)
        return self.enc_output_norm(self.enc_output(feats_t)), logits, valid


def proposal_pos_embed(boxes: Tensor, d_model: int, temperature: float = 10000.0) -> Tensor:
    """Sine embedding of ``[B, Q, 4]`` boxes in [0, 1] -> ``[B, Q, 2 * d_model]`` (official
    ``get_proposal_pos_embed``: d_model/2 frequencies per coordinate, interleaved sin/cos)."""
    num_feats = d_model // 2
    dim_t = torch.arange(num_feats, device=boxes.device, dtype=boxes.dtype)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    pos = boxes[..., None] * (2 * math.pi) / dim_t  # [B, Q, 4, num_feats]
    return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=-1).flatten(2)
