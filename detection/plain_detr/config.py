"""Plain-DETR configuration: the paper's sizes are the defaults, :func:`tiny_config` is the CPU-scale one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detection.plain_config import PlainConfig
from detection.registry import list_models

RPE_TYPES = ("linear", "abs_log8", "none")


@dataclass
class PlainDETRConfig(PlainConfig):
    """Every size of the model and its training losses.

    Defaults follow Plain-DETR's released BoxRPB config (``configs/swinv2_small_sup_pt_boxrpe.sh``): d=256, 8 heads,
    FFN 2048, 6 pre-norm decoder layers, 300 one-to-one + 1500 one-to-many queries with k=6, proposals on strides
    8/16/32/64 expanded from the stride-16 map, focal 2 / L1 5 / GIoU 2 for both loss and matching cost.
    """

    num_classes: int = 80
    backbone: str = "convnet"
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    feature_stride: int = 16
    d_model: int = 256
    num_heads: int = 8
    ffn_dim: int = 2048
    num_layers: int = 6
    dropout: float = 0.0
    rpe_type: str = "linear"
    rpe_hidden_dim: int = 512
    attention_backend: str = "auto"  # kernels.boxrpb_attention backend: auto | reference | flex | triton
    num_queries_one2one: int = 300
    num_queries_one2many: int = 1500
    k_one2many: int = 6
    lambda_one2many: float = 1.0
    proposal_strides: tuple[int, ...] = (8, 16, 32, 64)
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    loss_class: float = 2.0
    loss_bbox: float = 5.0
    loss_giou: float = 2.0
    pixel_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    pixel_std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        self.proposal_strides = tuple(int(s) for s in self.proposal_strides)
        self.pixel_mean = tuple(float(m) for m in self.pixel_mean)
        self.pixel_std = tuple(float(s) for s in self.pixel_std)
        self.backbone_kwargs = dict(self.backbone_kwargs)
        if self.rpe_type not in RPE_TYPES:
            raise ValueError(f"rpe_type must be one of {RPE_TYPES}, got {self.rpe_type!r}")
        if self.backbone not in list_models("detr_backbone"):
            raise ValueError(f"backbone must be one of {list_models('detr_backbone')}, got {self.backbone!r}")
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by num_heads={self.num_heads}")
        if self.d_model % 32:
            raise ValueError(
                f"d_model={self.d_model} must be a multiple of 32 (GroupNorm(32) input projection)"
            )
        if self.num_classes < 1 or self.num_layers < 1 or self.num_queries_one2one < 1:
            raise ValueError("num_classes, num_layers and num_queries_one2one must be >= 1")
        if self.num_queries_one2many < 0 or self.k_one2many < 0:
            raise ValueError("num_queries_one2many and k_one2many must be >= 0")
        for s in self.proposal_strides:
            if s <= 0 or (s & (s - 1)) or not (self.feature_stride // 8 <= s <= self.feature_stride * 8):
                raise ValueError(
                    f"proposal stride {s} must be a power of two within 8x of {self.feature_stride}"
                )

    @property
    def num_queries(self) -> int:
        """Queries used in training (one-to-one + one-to-many); evaluation uses only the one-to-one group."""
        return self.num_queries_one2one + self.num_queries_one2many


def tiny_config(num_classes: int, **overrides: Any) -> PlainDETRConfig:
    """CPU-scale model for tests, the demo and the ablation (64-128 px images, a few minutes per run)."""
    base: dict[str, Any] = dict(
        num_classes=num_classes,
        backbone="convnet",
        backbone_kwargs={"channels": [16, 32, 64, 128]},
        d_model=64,
        num_heads=4,
        ffn_dim=256,
        num_layers=2,
        rpe_hidden_dim=128,
        num_queries_one2one=50,
        num_queries_one2many=100,
        k_one2many=6,
    )
    base.update(overrides)
    return PlainDETRConfig(**base)
