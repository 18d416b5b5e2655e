"""COCO box evaluation with pycocotools' ``COCOeval``: AP, AP50, AP75, APs, APm, APl, as a table and a json."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detection.safe_files import atomic_write_json

METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


class CocoEvaluator:
    """Collects detections in original-image pixels (``xyxy``, contiguous labels) and runs ``COCOeval('bbox')``."""

    def __init__(self, coco_gt: COCO, cat_ids: list[int]) -> None:
        self.coco_gt, self.cat_ids = coco_gt, list(cat_ids)
        self.results: list[dict] = []
        self.image_ids: set[int] = set()

    def update(self, image_id: int, boxes_xyxy: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> None:
        boxes_xyxy, scores, labels = np.asarray(boxes_xyxy), np.asarray(scores), np.asarray(labels)
        if boxes_xyxy.shape != (len(scores), 4) or labels.shape != scores.shape:
            raise ValueError("need boxes [N, 4], scores [N] and labels [N]")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.cat_ids)):
            raise ValueError(f"labels must be in [0, {len(self.cat_ids)})")
        self.image_ids.add(int(image_id))
        for (x0, y0, x1, y1), s, lab in zip(
            boxes_xyxy.tolist(), scores.tolist(), labels.tolist(), strict=True
        ):
            self.results.append(
                {
                    "image_id": int(image_id),
                    "category_id": self.cat_ids[int(lab)],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": float(s),
                }
            )

    def compute(self) -> dict[str, float]:
        """COCO metrics in percent over the images seen so far (0 for all when nothing was detected)."""
        if not self.results:
            return dict.fromkeys(METRICS, 0.0)
        with contextlib.redirect_stdout(io.StringIO()):
            coco_dt = self.coco_gt.loadRes(self.results)
            ev = COCOeval(self.coco_gt, coco_dt, "bbox")
            ev.params.imgIds = sorted(self.image_ids)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        # COCOeval reports -1 for an area range without ground truth; keep it as -1 (not a score).
        return {m: float(v) * 100 if v >= 0 else -1.0 for m, v in zip(METRICS, ev.stats[:6], strict=True)}


def format_table(rows: dict[str, dict[str, float]]) -> str:
    """Markdown table: one row per named result."""
    head = "| run | " + " | ".join(METRICS) + " |\n|---|" + "---:|" * len(METRICS) + "\n"
    return head + "".join(
        f"| {name} | " + " | ".join(f"{r[m]:.1f}" for m in METRICS) + " |\n" for name, r in rows.items()
    )


def save_metrics(path: str | Path, metrics: dict[str, float]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, metrics)
    return path
