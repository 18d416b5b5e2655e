"""LightningModule for Plain-DETR: hybrid-matching training, COCOeval validation (AP logged, table printed and
saved). Instantiated by ``vid2robot-train task=detection`` (``vid2robot/conf/task/detection.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from detection.coco.evaluation import METRICS, CocoEvaluator, format_table, save_metrics
from detection.plain_detr.config import PlainDETRConfig
from detection.plain_detr.losses import SetCriterion
from detection.plain_detr.model import PlainDETR
from detection.plain_detr.postprocess import topk_detections
from detection.training.schedule import adamw_with_warmup, parameter_groups

Batch = tuple[Tensor, Tensor, list[dict[str, Tensor]]]


class PlainDETRModule(L.LightningModule):
    """AdamW (backbone at ``lr * backbone_lr_mult``), linear warmup, x0.1 at ``lr_drop`` of the run (paper: epoch
    11 of 12). Gradient clipping (official 0.1) is the Trainer's ``gradient_clip_val``, set by the task config."""

    def __init__(
        self,
        model: dict[str, Any] | DictConfig,
        lr: float = 2e-4,
        backbone_lr_mult: float = 0.1,
        weight_decay: float = 0.05,
        warmup_steps: int = 100,
        lr_drop: float = 11 / 12,
        eval_top_k: int = 100,
        image_size: int = 800,
    ) -> None:
        super().__init__()
        model_dict = (
            OmegaConf.to_container(model, resolve=True) if isinstance(model, DictConfig) else dict(model)
        )
        self.config = PlainDETRConfig.from_dict(model_dict)
        # Plain containers only: checkpoints must load with weights_only=True.
        self.save_hyperparameters(
            {
                "model": self.config.to_dict(),
                "lr": lr,
                "backbone_lr_mult": backbone_lr_mult,
                "weight_decay": weight_decay,
                "warmup_steps": warmup_steps,
                "lr_drop": lr_drop,
                "eval_top_k": eval_top_k,
                "image_size": image_size,
            }
        )
        self.model = PlainDETR(self.config)
        self.criterion = SetCriterion(self.config)
        self.evaluator: CocoEvaluator | None = None
        self.last_metrics: dict[str, float] = {}

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is not None and hasattr(dm, "num_classes") and dm.num_classes != self.config.num_classes:
            raise ValueError(f"model has {self.config.num_classes} classes but the data has {dm.num_classes}")

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        images, mask, targets = batch
        losses = self.criterion(self.model(images, mask), targets)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=False, batch_size=len(targets))
        self.log("train/loss_total", losses["loss"], prog_bar=True, batch_size=len(targets))
        return losses["loss"]

    def on_validation_epoch_start(self) -> None:
        val_set = self.trainer.datamodule.val_set
        self.evaluator = CocoEvaluator(val_set.coco, val_set.cat_ids)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        images, mask, targets = batch
        logits, boxes = self.model.predict_raw(images, mask)
        xyxy, scores, labels = topk_detections(logits, boxes, self.hparams.eval_top_k)
        for i, t in enumerate(targets):
            h, w = t["orig_size"].tolist()
            px = xyxy[i] * torch.tensor([w, h, w, h], dtype=xyxy.dtype, device=xyxy.device)
            self.evaluator.update(
                int(t["image_id"]), px.cpu().numpy(), scores[i].cpu().numpy(), labels[i].cpu().numpy()
            )

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        metrics = self.evaluator.compute()
        self.last_metrics = metrics
        self.log_dict({f"val/{m}": metrics[m] for m in METRICS})
        rank_zero_info("\n" + format_table({f"step {self.global_step}": metrics}))
        out_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir)
        save_metrics(out_dir / "coco_metrics" / f"step_{self.global_step:07d}.json", metrics)

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        groups = parameter_groups(
            self.named_parameters(), hp.weight_decay, decay_vectors=True,
            lr_scales={"model.backbone.": hp.backbone_lr_mult},
        )  # fmt: skip
        return adamw_with_warmup(self, groups, hp.lr, hp.warmup_steps, decay="step", drop_at=hp.lr_drop)
