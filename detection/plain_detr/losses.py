"""Set-prediction losses: sigmoid focal (classes), L1 and GIoU (boxes), per decoder layer, for the two-stage
proposals, and for the one-to-many group against targets repeated ``k`` times (H-DETR hybrid matching,
official ``engine.train_hybrid``). All terms are normalised by the number of target boxes in the batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from detection.plain_detr.box_ops import box_cxcywh_to_xyxy, paired_generalized_box_iou
from detection.plain_detr.config import PlainDETRConfig
from detection.plain_detr.matcher import HungarianMatcher, Target


def sigmoid_focal_loss(
    logits: Tensor, targets: Tensor, num_boxes: float, alpha: float = 0.25, gamma: float = 2.0
):
    """Focal loss (Lin et al. 2017) summed over queries and classes, divided by ``num_boxes`` (official
    ``sigmoid_focal_loss(...) * num_queries`` == sum / num_boxes)."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.sum() / num_boxes


class SetCriterion:
    """Matches, then sums ``w_cls * focal + w_l1 * L1 + w_giou * (1 - GIoU)`` over every supervised output."""

    def __init__(self, config: PlainDETRConfig) -> None:
        self.cfg = config
        self.matcher = HungarianMatcher(
            config.loss_class, config.loss_bbox, config.loss_giou, config.focal_alpha, config.focal_gamma
        )

    def single(
        self, logits: Tensor, boxes: Tensor, targets: list[Target], num_boxes: float
    ) -> dict[str, Tensor]:
        """Unweighted ``cls``, ``l1``, ``giou`` of one output ``[B, Q, K]``, ``[B, Q, 4]``."""
        indices = self.matcher(logits, boxes, targets)
        batch_idx = torch.cat([torch.full_like(q, i) for i, (q, _) in enumerate(indices)]).to(logits.device)
        query_idx = torch.cat([q for q, _ in indices]).to(logits.device)
        tgt_labels = torch.cat(
            [t["labels"][j.to(t["labels"].device)] for t, (_, j) in zip(targets, indices, strict=False)]
        )
        tgt_boxes = torch.cat(
            [t["boxes"][j.to(t["boxes"].device)] for t, (_, j) in zip(targets, indices, strict=False)]
        )
        onehot = torch.zeros_like(logits)
        onehot[batch_idx, query_idx, tgt_labels] = 1.0
        cls = sigmoid_focal_loss(logits, onehot, num_boxes, self.cfg.focal_alpha, self.cfg.focal_gamma)
        src = boxes[batch_idx, query_idx]
        if src.numel() == 0:
            zero = boxes.sum() * 0.0
            return {"cls": cls, "l1": zero, "giou": zero}
        l1 = F.l1_loss(src, tgt_boxes, reduction="sum") / num_boxes
        giou = paired_generalized_box_iou(box_cxcywh_to_xyxy(src), box_cxcywh_to_xyxy(tgt_boxes))
        return {"cls": cls, "l1": l1, "giou": (1 - giou).sum() / num_boxes}

    def weighted(self, parts: dict[str, Tensor]) -> Tensor:
        return (
            self.cfg.loss_class * parts["cls"]
            + self.cfg.loss_bbox * parts["l1"]
            + self.cfg.loss_giou * parts["giou"]
        )

    def __call__(self, outputs: dict[str, object], targets: list[Target]) -> dict[str, Tensor]:
        """Returns ``loss`` (the total to optimise) and the unweighted last-layer parts for logging."""
        for t in targets:
            if (
                t["boxes"].dim() != 2
                or t["boxes"].shape[-1] != 4
                or t["labels"].shape[0] != t["boxes"].shape[0]
            ):
                raise ValueError("each target needs 'labels' [M] and 'boxes' [M, 4] (cxcywh in [0, 1])")
        num_boxes = max(float(sum(len(t["labels"]) for t in targets)), 1.0)
        logs: dict[str, Tensor] = {}
        total = torch.zeros((), device=outputs["enc"][0].device)
        layers = outputs["one2one"]
        for i, (lg, bx) in enumerate(layers):
            parts = self.single(lg, bx, targets, num_boxes)
            total = total + self.weighted(parts)
            if i == len(layers) - 1:
                logs.update({f"loss_{k}": v.detach() for k, v in parts.items()})
        enc_targets = [{"labels": torch.zeros_like(t["labels"]), "boxes": t["boxes"]} for t in targets]
        enc_parts = self.single(*outputs["enc"], enc_targets, num_boxes)
        total = total + self.weighted(enc_parts)
        logs["loss_enc"] = self.weighted(enc_parts).detach()
        if "one2many" in outputs:
            k = self.cfg.k_one2many
            many_targets = [
                {"labels": t["labels"].repeat(k), "boxes": t["boxes"].repeat(k, 1)} for t in targets
            ]
            many = torch.zeros_like(total)
            for lg, bx in outputs["one2many"]:
                many = many + self.weighted(self.single(lg, bx, many_targets, num_boxes * k))
            total = total + self.cfg.lambda_one2many * many
            logs["loss_one2many"] = many.detach()
        logs["loss"] = total
        return logs
