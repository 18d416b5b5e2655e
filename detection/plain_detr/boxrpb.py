"""BoxRPB: box-to-pixel relative position bias and the global cross-attention that uses it.

Paper (Lin et al., "DETR Doesn't Need Multi-Scale or Locality Design", ICCV 2023), Eq. 3-4: for a query box with
corners ``(x1, y1, x2, y2)`` and a pixel centre ``(x, y)`` the bias decomposes per axis,
``B(x, y) = MLP_x([x1 - x, x2 - x]) + MLP_y([y1 - y, y2 - y])``, each MLP 2 -> hidden -> heads. Offsets are in
input-image pixels, pixel centres at ``(j + 0.5) * stride`` (official ``GlobalCrossAttention``); the ``abs_log8``
mode maps an offset ``d`` to ``sign(d) * log2(|d| + 1) / log2(8)``. The bias is never materialised here as
``[B, heads, Q, H*W]``: it goes to :func:`kernels.boxrpb_attention` as its two factors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from detection.plain_detr.config import RPE_TYPES
from kernels import boxrpb_attention


def box_rpb_offsets(
    boxes: Tensor, image_wh: Tensor, feat_hw: tuple[int, int], stride: int, mode: str
) -> tuple[Tensor, Tensor]:
    """Per-axis corner-to-pixel-centre offsets.

    Args:
        boxes: ``[B, Q, 4]`` reference boxes, ``cxcywh`` normalised to the valid (unpadded) image.
        image_wh: ``[B, 2]`` valid image width and height in pixels.
        feat_hw: ``(H, W)`` of the (padded) feature map.
        stride: feature stride in pixels.
        mode: ``"linear"`` or ``"abs_log8"``.

    Returns:
        ``dx [B, Q, W, 2]`` = ``(x1 - x_j, x2 - x_j)`` and ``dy [B, Q, H, 2]`` = ``(y1 - y_i, y2 - y_i)``.
    """
    if boxes.dim() != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be [B, Q, 4], got {tuple(boxes.shape)}")
    if image_wh.shape != (boxes.shape[0], 2):
        raise ValueError(f"image_wh must be [B, 2] = {(boxes.shape[0], 2)}, got {tuple(image_wh.shape)}")
    if mode not in ("linear", "abs_log8"):
        raise ValueError(f"mode must be 'linear' or 'abs_log8', got {mode!r}")
    h, w = feat_hw
    cx, cy, bw, bh = boxes.unbind(-1)
    img_w, img_h = image_wh[:, None, 0], image_wh[:, None, 1]
    xs = torch.stack(((cx - bw / 2) * img_w, (cx + bw / 2) * img_w), -1)  # [B, Q, 2]
    ys = torch.stack(((cy - bh / 2) * img_h, (cy + bh / 2) * img_h), -1)
    centre_x = (torch.arange(w, device=boxes.device, dtype=boxes.dtype) + 0.5) * stride
    centre_y = (torch.arange(h, device=boxes.device, dtype=boxes.dtype) + 0.5) * stride
    dx = xs[:, :, None, :] - centre_x[None, None, :, None]
    dy = ys[:, :, None, :] - centre_y[None, None, :, None]
    if mode == "abs_log8":
        dx = torch.sign(dx) * torch.log2(dx.abs() + 1.0) / math.log2(8)
        dy = torch.sign(dy) * torch.log2(dy.abs() + 1.0) / math.log2(8)
    return dx, dy


def _rpb_mlp(hidden: int, heads: int) -> nn.Sequential:
    # Official cpb_mlp: Linear(2, hidden) + ReLU + Linear(hidden, heads, bias=False).
    return nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, heads, bias=False))


class BoxRPB(nn.Module):
    """The two axis MLPs; returns the factored bias ``bias_x [B, h, Q, W]`` and ``bias_y [B, h, Q, H]``."""

    def __init__(self, num_heads: int, hidden_dim: int = 512, mode: str = "linear", stride: int = 16) -> None:
        super().__init__()
        if mode not in ("linear", "abs_log8"):
            raise ValueError(f"BoxRPB mode must be 'linear' or 'abs_log8', got {mode!r}")
        self.mode, self.stride = mode, stride
        self.mlp_x = _rpb_mlp(hidden_dim, num_heads)
        self.mlp_y = _rpb_mlp(hidden_dim, num_heads)

    def forward(self, boxes: Tensor, image_wh: Tensor, feat_hw: tuple[int, int]) -> tuple[Tensor, Tensor]:
        dx, dy = box_rpb_offsets(boxes, image_wh, feat_hw, self.stride, self.mode)
        return self.mlp_x(dx).permute(0, 3, 1, 2), self.mlp_y(dy).permute(0, 3, 1, 2)


class GlobalCrossAttention(nn.Module):
    """Every query attends to every pixel of the single-scale map; logits get BoxRPB (or nothing, ``rpe_type='none'``,
    the paper's no-RPB ablation arm, which keeps the absolute sine position embedding on the keys)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        rpe_type: str = "linear",
        rpe_hidden_dim: int = 512,
        stride: int = 16,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if rpe_type not in RPE_TYPES:
            raise ValueError(f"rpe_type must be one of {RPE_TYPES}, got {rpe_type!r}")
        self.num_heads, self.backend = num_heads, backend
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.rpb = None if rpe_type == "none" else BoxRPB(num_heads, rpe_hidden_dim, rpe_type, stride)

    def _heads(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        return x.view(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(
        self,
        query: Tensor,
        boxes: Tensor,
        key: Tensor,
        value: Tensor,
        feat_hw: tuple[int, int],
        image_wh: Tensor,
        key_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """``query [B, Q, C]`` (content + position), ``key``/``value [B, H*W, C]``, mask ``[B, H*W]`` True=pad."""
        q, k, v = self._heads(self.q(query)), self._heads(self.k(key)), self._heads(self.v(value))
        if self.rpb is None:
            # Padded keys get -100 added, as the official decoder (and kernels' BoxRPB path) does.
            mask = (
                None if key_padding_mask is None else key_padding_mask[:, None, None, :].to(q.dtype) * -100.0
            )
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            bias_x, bias_y = self.rpb(boxes, image_wh, feat_hw)
            out = boxrpb_attention(
                q, k, v, bias_x, bias_y, key_padding_mask=key_padding_mask, backend=self.backend
            )
        b, _, n, _ = out.shape
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))
