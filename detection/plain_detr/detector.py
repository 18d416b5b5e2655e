"""Inference API: ``Detector.from_checkpoint(path).predict(images) -> boxes, scores, labels``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from detection.devices import check_device
from detection.export_format import load_state_strictly, read_export, write_export
from detection.plain_detr.config import PlainDETRConfig
from detection.plain_detr.model import PlainDETR
from detection.plain_detr.postprocess import topk_detections
from detection.safe_files import CheckpointError, load_torch_file


class Detector:
    """Batched Plain-DETR inference on raw RGB frames.

    Images are ``uint8 [H, W, 3]`` RGB arrays (the package's raw-frame format) of any sizes; each is resized so its
    longer side is ``input_size``, the batch is padded (with a padding mask), and boxes come back as ``xyxy`` pixels
    of the original image. Per image, detections with ``score >= score_threshold`` among the best ``top_k``.
    """

    def __init__(
        self,
        model: PlainDETR,
        input_size: int = 800,
        score_threshold: float = 0.3,
        top_k: int = 100,
        device: str | torch.device = "cpu",
    ) -> None:
        if input_size < model.config.feature_stride:
            raise ValueError(f"input_size must be >= the feature stride {model.config.feature_stride}")
        if not 0.0 <= score_threshold <= 1.0 or top_k < 1:
            raise ValueError("score_threshold must be in [0, 1] and top_k >= 1")
        self.model = model.to(check_device(device)).eval()
        self.input_size, self.score_threshold, self.top_k = input_size, score_threshold, top_k
        self.device = torch.device(device)

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs) -> Detector:
        """A Lightning ``.ckpt`` (from ``vid2robot-train task=detection``) or a folder written by :meth:`save`."""
        path = Path(path)
        if path.is_dir():
            meta, state = read_export(path, ("model", "input_size"), "Detector.save")
            config = PlainDETRConfig.from_dict(meta["model"])
            kwargs.setdefault("input_size", int(meta["input_size"]))
        elif path.is_file():
            ckpt = load_torch_file(path, what="detector checkpoint")
            hp = ckpt.get("hyper_parameters", {})
            if not isinstance(hp, dict) or "model" not in hp:
                raise CheckpointError(
                    f"{path} has no 'model' hyper-parameters: not a PlainDETRModule checkpoint "
                    "(vid2robot-train task=detection writes those; policies load with vid2robot.policy.load_policy)"
                )
            config = PlainDETRConfig.from_dict(hp["model"])
            state = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
            if "image_size" in hp:
                kwargs.setdefault("input_size", int(hp["image_size"]))
        else:
            raise FileNotFoundError(f"no detector checkpoint at {path}")
        model = PlainDETR(config)
        load_state_strictly(model, state, path)
        return cls(model, **kwargs)

    def save(self, folder: str | Path) -> Path:
        """Inference weights as safetensors + ``config.json`` (the package's export format,
        ``detection.export_format``)."""
        meta = {"model": self.model.config.to_dict(), "input_size": self.input_size}
        return write_export(folder, self.model, meta, writer="Detector.save")

    def _batch(self, images: Sequence[np.ndarray]) -> tuple[Tensor, Tensor, list[tuple[int, int]]]:
        resized, sizes = [], []
        for img in images:
            if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ValueError("each image must be a uint8 RGB array [H, W, 3]")
            h, w = img.shape[:2]
            scale = self.input_size / max(h, w)
            nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
            resized.append(cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR))
            sizes.append((h, w))
        H = max(r.shape[0] for r in resized)
        W = max(r.shape[1] for r in resized)
        batch = torch.zeros(len(resized), 3, H, W)
        mask = torch.ones(len(resized), H, W, dtype=torch.bool)
        for i, r in enumerate(resized):
            batch[i, :, : r.shape[0], : r.shape[1]] = torch.from_numpy(r).permute(2, 0, 1).float() / 255.0
            mask[i, : r.shape[0], : r.shape[1]] = False
        return batch, mask, sizes

    @torch.no_grad()
    def predict(self, images: Sequence[np.ndarray]) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """-> per image ``boxes [N, 4]`` xyxy pixels, ``scores [N]``, ``labels [N]`` (0-based class indices)."""
        if len(images) == 0:
            raise ValueError("predict needs at least one image")
        batch, mask, sizes = self._batch(images)
        logits, boxes = self.model.predict_raw(batch.to(self.device), mask.to(self.device))
        xyxy, scores, labels = topk_detections(logits, boxes, self.top_k)
        out_boxes, out_scores, out_labels = [], [], []
        for i, (h, w) in enumerate(sizes):
            keep = scores[i] >= self.score_threshold
            scale = torch.tensor([w, h, w, h], dtype=xyxy.dtype, device=xyxy.device)
            box = torch.minimum((xyxy[i][keep] * scale).clamp(min=0), scale)
            out_boxes.append(box.cpu())
            out_scores.append(scores[i][keep].cpu())
            out_labels.append(labels[i][keep].cpu())
        return out_boxes, out_scores, out_labels
