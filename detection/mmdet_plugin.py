"""mmdetection 3.3 registration: Plain-DETR (BoxRPB) as an mmdet detector and BiFormer as an mmdet backbone.

Load it from a config with ``custom_imports = dict(imports=["detection.mmdet_plugin"], allow_failed_imports=False)``
(see ``detection/configs/plain_detr_boxrpb_synthetic.py``). The only module of the package that imports
mmdet/mmcv (mmengine also in ``detection.mmengine_checkpoints``, which it calls); the math stays in
``detection.plain_detr`` (this wraps :class:`PlainDETR`, its losses and its post-processing). Needs the ``mmdet`` extra with mmcv's compiled ops (``make mmdet``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, OptSampleList, SampleList
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from detection.mmengine_checkpoints import allow_mmengine_checkpoints
from detection.plain_detr.config import PlainDETRConfig
from detection.plain_detr.losses import SetCriterion
from detection.plain_detr.matcher import Target
from detection.plain_detr.model import DecoderInputs, MemoryInputs, PlainDETR, hybrid_self_attn_mask
from detection.plain_detr.postprocess import topk_detections
from detection.registry import create_model, list_models

__all__ = ["BiFormer", "PlainDETRDetector"]

allow_mmengine_checkpoints()  # mmdet tools, load_from and resume read checkpoints with weights_only=True


@MODELS.register_module()
class BiFormer(BaseModule):
    """The package's BiFormer (``detection.biformer``) as an mmdet backbone: a tuple of NCHW maps at strides
    ``(4, 8, 16, 32)[i]`` for ``i`` in ``out_indices``.

    ``arch``: ``tiny`` | ``small`` | ``base`` (the registry's ``biformer_<arch>``), or ``None`` to give ``depth``, ``embed_dim``, ... in ``kwargs``.
    ``checkpoint_path``: official ImageNet weights (``load_official_checkpoint``). Stages after the last output
    are dropped (they would run for nothing and get no gradient).
    """

    def __init__(
        self,
        arch: str | None = "tiny",
        out_indices: Sequence[int] = (2,),
        checkpoint_path: str | Path | None = None,
        init_cfg: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        out_indices = tuple(int(i) for i in out_indices)
        archs = [
            name.removeprefix("biformer_")
            for name in list_models("classifier")
            if name.startswith("biformer_")
        ]
        if arch is not None and arch not in archs:
            raise ValueError(f"arch must be one of {archs} or None, got {arch!r}")
        body = create_model(
            "classifier",
            "biformer" if arch is None else f"biformer_{arch}",
            num_classes=0,
            checkpoint_path=checkpoint_path,
            out_indices=out_indices,
            **kwargs,
        )
        last = max(out_indices) + 1
        del body.downsample_layers[last:]
        del body.stages[last:]
        body.norm = nn.Identity()  # the classifier's norm after stage 4
        self.body = body
        self.out_channels = [body.embed_dim[i] for i in out_indices]

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return self.body(x)


class _LastMap(nn.Module):
    """An mmdet backbone (a tuple of maps) as :class:`PlainDETR` wants one: its last map, and ``out_channels``."""

    def __init__(self, body: nn.Module, out_channels: int) -> None:
        super().__init__()
        self.body, self.out_channels = body, out_channels

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)[-1]


def _last_channels(body: nn.Module, given: int | None) -> int:
    if given is not None:
        return int(given)
    channels = getattr(body, "out_channels", None)
    if channels is None:
        raise ValueError(
            f"{type(body).__name__} has no out_channels: set backbone_channels to the channels of its last map"
        )
    return int(channels[-1] if isinstance(channels, Sequence) else channels)


@MODELS.register_module()
class PlainDETRDetector(BaseDetector):
    """Plain-DETR with BoxRPB in mmdet's detector interface, with the stages of mmdet's ``DetectionTransformer``:
    ``extract_feat -> pre_transformer -> forward_encoder -> pre_decoder -> forward_decoder``, then ``loss`` or
    ``predict``. Every stage delegates to :class:`detection.plain_detr.PlainDETR` (held as ``self.detr``).

    Args:
        backbone: an mmdet backbone config whose last output is the stride-16 map (``BiFormer`` with
            ``out_indices=(2,)``, or e.g. ``ResNet`` with ``out_indices=(2,)``).
        detr: :class:`PlainDETRConfig` fields (sizes, queries, losses) except ``backbone``/``backbone_kwargs``.
        backbone_channels: channels of the backbone's last map, where the backbone has no ``out_channels``.
        train_cfg: accepted for mmdet's config layout; matching costs are the ``detr`` loss weights (official).
        test_cfg: ``max_per_img`` (top-k over query x class scores, default 100).

    Inputs are RGB in [0, 1] (``DetDataPreprocessor`` with ``mean=0, std=255, bgr_to_rgb=True``): the model
    normalises with ImageNet statistics itself, as the package's other entry points do. ``loss`` returns the
    optimised total as ``loss`` and, for logging only, the detached last-layer ``cls``/``l1``/``giou`` and the
    weighted ``enc``/``one2many`` terms (no ``loss`` in their names, so mmengine does not add them again).
    """

    def __init__(
        self,
        backbone: dict,
        detr: dict,
        backbone_channels: int | None = None,
        train_cfg: dict | None = None,
        test_cfg: dict | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        detr = dict(detr)
        if {"backbone", "backbone_kwargs"} & set(detr):
            raise ValueError("set the backbone with the detector's `backbone` config, not inside `detr`")
        body = MODELS.build(backbone)
        self.detr = PlainDETR(
            PlainDETRConfig.from_dict(detr), backbone=_LastMap(body, _last_channels(body, backbone_channels))
        )
        self.criterion = SetCriterion(self.detr.config)
        self.train_cfg = dict(train_cfg or {})
        self.test_cfg = {"max_per_img": 100, **(test_cfg or {})}

    def init_weights(self) -> None:
        """mmengine's init, then the backbone's own (its ``init_cfg``, e.g. ``Pretrained``): the backbone sits
        inside the core model, deeper than the direct children that mmengine's walk reaches."""
        super().init_weights()
        body = self.detr.backbone.body
        if hasattr(body, "init_weights") and not getattr(body, "is_init", False):
            body.init_weights()

    # ---- DetectionTransformer stages ---------------------------------------------------------------------------
    def extract_feat(self, batch_inputs: Tensor) -> tuple[Tensor]:
        """``[B, 3, H, W]`` RGB in [0, 1] -> ``(stride-16 map,)``; a backbone at another stride is refused."""
        feat = self.detr.extract_feat(batch_inputs)
        stride = self.detr.config.feature_stride
        for size, cells in zip(batch_inputs.shape[-2:], feat.shape[-2:], strict=True):
            if abs(cells * stride - size) >= stride:
                raise ValueError(
                    f"the backbone gives a {tuple(feat.shape[-2:])} map for a {tuple(batch_inputs.shape[-2:])} "
                    f"input: Plain-DETR needs its last map at stride {stride}"
                )
        return (feat,)

    def pre_transformer(self, img_feats: tuple[Tensor], batch_data_samples: SampleList) -> MemoryInputs:
        """Padding mask from each sample's ``img_shape`` inside ``batch_input_shape``, then projection, positions
        and the valid image sizes (``PlainDETR.pre_transformer``)."""
        feat = img_feats[-1]
        h, w = batch_data_samples[0].metainfo["batch_input_shape"]
        pad_mask = torch.ones(feat.shape[0], h, w, dtype=torch.bool, device=feat.device)
        for mask, sample in zip(pad_mask, batch_data_samples, strict=True):
            ih, iw = sample.metainfo["img_shape"][:2]
            mask[:ih, :iw] = False
        return self.detr.pre_transformer(feat, pad_mask, (h, w))

    def forward_encoder(self, memory: MemoryInputs) -> MemoryInputs:
        """Plain-DETR has no transformer encoder (paper Sec. 3): the projected map is the decoder's memory."""
        return memory

    def pre_decoder(self, memory: MemoryInputs) -> DecoderInputs:
        """Two-stage query selection (``PlainDETR.pre_decoder``) for the queries of this mode."""
        return self.detr.pre_decoder(memory, self._num_queries())

    def forward_decoder(
        self, memory: MemoryInputs, queries: DecoderInputs
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Decoder with BoxRPB cross-attention and the one-to-one / one-to-many group mask when training."""
        cfg = self.detr.config
        mask = None
        if self._hybrid():
            mask = hybrid_self_attn_mask(
                cfg.num_queries_one2one, cfg.num_queries_one2many, memory.memory.device
            )
        return self.detr.forward_decoder(memory, queries, mask)

    def forward_transformer(
        self, img_feats: tuple[Tensor], batch_data_samples: SampleList
    ) -> dict[str, object]:
        """The stages in order -> the outputs of ``PlainDETR.forward`` (``one2one``, ``enc``, ``one2many``)."""
        memory = self.forward_encoder(self.pre_transformer(img_feats, batch_data_samples))
        queries = self.pre_decoder(memory)
        logits, boxes = self.forward_decoder(memory, queries)
        k = self.detr.config.num_queries_one2one
        out: dict[str, object] = {
            "one2one": [(lg[:, :k], bx[:, :k]) for lg, bx in zip(logits, boxes, strict=True)],
            "enc": (queries.enc_logits, queries.enc_boxes),
        }
        if self._hybrid():
            out["one2many"] = [(lg[:, k:], bx[:, k:]) for lg, bx in zip(logits, boxes, strict=True)]
        return out

    # ---- mmdet modes -------------------------------------------------------------------------------------------
    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict[str, Tensor]:
        """Hybrid-matching set loss (``SetCriterion``) against each sample's ``gt_instances``."""
        outputs = self.forward_transformer(self.extract_feat(batch_inputs), batch_data_samples)
        logs = self.criterion(outputs, [_target(s) for s in batch_data_samples])
        total = logs.pop("loss")
        return {"loss": total, **{name.removeprefix("loss_"): value for name, value in logs.items()}}

    def predict(
        self, batch_inputs: Tensor, batch_data_samples: SampleList, rescale: bool = True
    ) -> SampleList:
        """Top ``max_per_img`` detections per image as ``pred_instances`` (``bboxes`` xyxy pixels of the original
        image when ``rescale``, else of the network input; ``scores`` best first; 0-based ``labels``)."""
        outputs = self.forward_transformer(self.extract_feat(batch_inputs), batch_data_samples)
        logits, boxes = outputs["one2one"][-1]
        xyxy, scores, labels = topk_detections(logits, boxes, int(self.test_cfg["max_per_img"]))
        results = []
        for i, sample in enumerate(batch_data_samples):
            h, w = sample.metainfo["img_shape"][:2]
            bboxes = xyxy[i] * xyxy.new_tensor([w, h, w, h])
            if rescale:
                bboxes = bboxes / bboxes.new_tensor(sample.metainfo["scale_factor"]).repeat(2)
                h, w = sample.metainfo["ori_shape"][:2]
            size = bboxes.new_tensor([w, h, w, h])
            results.append(
                InstanceData(
                    bboxes=torch.minimum(bboxes.clamp(min=0), size), scores=scores[i], labels=labels[i]
                )
            )
        return self.add_pred_to_datasample(batch_data_samples, results)

    def _forward(
        self, batch_inputs: Tensor, batch_data_samples: OptSampleList = None
    ) -> tuple[Tensor, Tensor]:
        """Last-layer one-to-one ``logits [B, Q, K]`` and ``boxes [B, Q, 4]`` (cxcywh in [0, 1]) ("tensor" mode)."""
        if batch_data_samples is None:
            hw = tuple(batch_inputs.shape[-2:])
            batch_data_samples = [
                DetDataSample(metainfo={"img_shape": hw, "batch_input_shape": hw}) for _ in batch_inputs
            ]
        outputs = self.forward_transformer(self.extract_feat(batch_inputs), batch_data_samples)
        return outputs["one2one"][-1]

    def _hybrid(self) -> bool:
        return self.training and self.detr.config.num_queries_one2many > 0

    def _num_queries(self) -> int:
        cfg = self.detr.config
        return cfg.num_queries if self._hybrid() else cfg.num_queries_one2one


def _target(sample: DetDataSample) -> Target:
    """``gt_instances`` (xyxy pixels of the network input) -> the core's cxcywh in [0, 1] of the valid image."""
    h, w = sample.metainfo["img_shape"][:2]
    gt = sample.gt_instances
    xyxy = getattr(gt.bboxes, "tensor", gt.bboxes).float()
    xyxy = (xyxy / xyxy.new_tensor([w, h, w, h])).clamp(0, 1)
    keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])  # boxes without area, as the core's dataset
    xyxy = xyxy[keep]
    cxcywh = torch.cat(((xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]), dim=1)
    return {"labels": gt.labels[keep].long(), "boxes": cxcywh}
