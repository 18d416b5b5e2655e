"""Turn raw one-to-one outputs into detections (official ``PostProcess``: top-k over all query x class scores)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from detection.plain_detr.box_ops import box_cxcywh_to_xyxy


def topk_detections(logits: Tensor, boxes: Tensor, top_k: int) -> tuple[Tensor, Tensor, Tensor]:
    """``[B, Q, K]`` logits, ``[B, Q, 4]`` cxcywh -> ``boxes [B, k, 4]`` (normalised xyxy), ``scores [B, k]``,
    ``labels [B, k]`` with ``k = min(top_k, Q * K)``, best first. The same query may appear with two classes."""
    b, q, k = logits.shape
    n = min(top_k, q * k)
    scores, idx = torch.topk(logits.sigmoid().reshape(b, q * k), n, dim=1)
    query = torch.div(idx, k, rounding_mode="floor")
    xyxy = torch.gather(box_cxcywh_to_xyxy(boxes), 1, query[..., None].expand(-1, -1, 4))
    return xyxy, scores, idx % k


class InferenceModel(nn.Module):
    """The exported graph: images ``[B, 3, H, W]`` in [0, 1] -> top-k ``boxes`` (xyxy pixels of the input),
    ``scores``, ``labels``. Thresholding (data-dependent sizes) is left to the caller."""

    def __init__(self, model: nn.Module, top_k: int = 100) -> None:
        super().__init__()
        self.model, self.top_k = model, top_k

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits, boxes = self.model.predict_raw(images)
        xyxy, scores, labels = topk_detections(logits, boxes, self.top_k)
        h, w = images.shape[-2:]
        scale = torch.tensor([w, h, w, h], dtype=xyxy.dtype, device=xyxy.device)
        return xyxy * scale, scores, labels
