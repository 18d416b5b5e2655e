"""Hungarian matching with the focal / L1 / GIoU costs of Deformable and Plain-DETR (official ``HungarianMatcher``)."""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from detection.plain_detr.box_ops import box_cxcywh_to_xyxy, generalized_box_iou

Target = dict[str, Tensor]


def focal_class_cost(prob: Tensor, labels: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """``[N, K]`` probabilities x ``[M]`` labels -> ``[N, M]``: focal loss of calling it positive minus negative."""
    neg = (1 - alpha) * prob**gamma * -(1 - prob + 1e-8).log()
    pos = alpha * (1 - prob) ** gamma * -(prob + 1e-8).log()
    return pos[:, labels] - neg[:, labels]


class HungarianMatcher:
    """Cost ``C = w_cls * focal + w_l1 * L1(cxcywh) + w_giou * -GIoU``; ``scipy.optimize.linear_sum_assignment`` per
    image. Returns, per image, ``(query_idx, target_idx)`` int64 tensors of length ``min(Q, M)``."""

    def __init__(
        self,
        cost_class: float = 2.0,
        cost_bbox: float = 5.0,
        cost_giou: float = 2.0,
        alpha: float = 0.25,
        gamma: float = 2.0,
    ) -> None:
        if cost_class == 0 and cost_bbox == 0 and cost_giou == 0:
            raise ValueError("all matching costs are zero")
        self.cost_class, self.cost_bbox, self.cost_giou = cost_class, cost_bbox, cost_giou
        self.alpha, self.gamma = alpha, gamma

    @torch.no_grad()
    def cost_matrix(self, logits: Tensor, boxes: Tensor, target: Target) -> Tensor:
        """``[Q, K]`` logits and ``[Q, 4]`` boxes of one image against its ``M`` targets -> ``[Q, M]``."""
        prob = logits.float().sigmoid()
        tgt_boxes = target["boxes"].float()
        c_cls = focal_class_cost(prob, target["labels"], self.alpha, self.gamma)
        c_l1 = torch.cdist(boxes.float(), tgt_boxes, p=1)
        c_giou = -generalized_box_iou(box_cxcywh_to_xyxy(boxes.float()), box_cxcywh_to_xyxy(tgt_boxes))
        return self.cost_class * c_cls + self.cost_bbox * c_l1 + self.cost_giou * c_giou

    @torch.no_grad()
    def __call__(self, logits: Tensor, boxes: Tensor, targets: list[Target]) -> list[tuple[Tensor, Tensor]]:
        if logits.shape[0] != len(targets):
            raise ValueError(f"batch of {logits.shape[0]} predictions but {len(targets)} targets")
        out = []
        for lg, bx, tgt in zip(logits, boxes, targets, strict=True):
            if tgt["labels"].numel() == 0:
                empty = torch.zeros(0, dtype=torch.int64)
                out.append((empty, empty))
                continue
            cost = self.cost_matrix(lg, bx, tgt).cpu()
            rows, cols = linear_sum_assignment(cost.numpy())
            out.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return out
