"""Box utilities. Boxes are ``cxcywh`` normalised to the image unless a name says ``xyxy``."""

from __future__ import annotations

import torch
from torch import Tensor


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def box_area(boxes: Tensor) -> Tensor:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def box_iou(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Pairwise IoU and union of ``xyxy`` boxes ``[N, 4]`` x ``[M, 4]`` -> ``[N, M]`` each."""
    area1, area2 = box_area(boxes1), box_area(boxes2)
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area1[:, None] + area2[None, :] - inter
    return inter / union, union


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise GIoU (Rezatofighi et al. 2019) of ``xyxy`` boxes ``[N, 4]`` x ``[M, 4]`` -> ``[N, M]``.

    Boxes must have ``x1 >= x0`` and ``y1 >= y0``; that is checked where boxes enter (datasets drop degenerate
    annotations, predictions are sigmoid widths), not here: a check here read the tensors back to the host
    at every matcher and loss step.
    """
    iou, union = box_iou(boxes1, boxes2)
    lt = torch.min(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.max(boxes1[:, None, 2:], boxes2[None, :, 2:])
    hull = (rb - lt).clamp(min=0).prod(-1)
    return iou - (hull - union) / hull


def paired_generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """GIoU of matched pairs ``[N, 4]`` and ``[N, 4]`` -> ``[N]`` (the diagonal of the pairwise GIoU, in O(N))."""
    area1, area2 = box_area(boxes1), box_area(boxes2)
    inter = (
        (torch.min(boxes1[:, 2:], boxes2[:, 2:]) - torch.max(boxes1[:, :2], boxes2[:, :2]))
        .clamp(min=0)
        .prod(-1)
    )
    union = area1 + area2 - inter
    hull = (
        (torch.max(boxes1[:, 2:], boxes2[:, 2:]) - torch.min(boxes1[:, :2], boxes2[:, :2]))
        .clamp(min=0)
        .prod(-1)
    )
    return inter / union - (hull - union) / hull


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    """``logit`` clamped away from 0 and 1, as box refinement in Deformable/Plain-DETR uses it."""
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))
