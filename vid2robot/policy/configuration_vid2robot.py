"""Hyper-parameters of the Vid2Robot policy (Jain et al. 2024, arXiv 2403.12943), LeRobot style.

The config is a flat dataclass of plain values so that it round-trips through ``to_dict`` /
``Vid2RobotConfig.from_dict`` and can be stored in a checkpoint loaded with ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from detection.plain_config import PlainConfig
from vid2robot.policy.action_normalization import check_action_range
from vid2robot.policy.frame_encoders import frame_encoder_names
from vid2robot.policy.loss_weights import LOSS_TERMS, check_loss_weights


def _check_positive(name: str, value: int | float) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


@dataclass
class Vid2RobotConfig(PlainConfig):
    """Sizes of every Vid2Robot module; defaults are the small CPU config (see ``small()``/``paper()``)."""

    PRESETS: ClassVar[tuple[str, ...]] = ("paper",)

    image_size: int = 96
    prompt_frames: int = 16  # paper: 16 prompt frames, first and last always included
    state_frames: int = 8  # paper: the robot's last 8 frames
    action_dim: int = 4
    action_bins: int = 256  # paper: 256 bins per action dimension
    horizon: int = 1  # action chunk length predicted per step
    # "convnet" (small CPU) | "vit" | "biformer" (detection.biformer_tiny) | "efficientnet_lite0" (frozen ImageNet)
    frame_encoder: str = "convnet"
    patch_size: int = 16  # ViT only
    encoder_dim: int = 128  # ViT width (ignored by convnet, whose output is d_model)
    encoder_depth: int = 2  # ViT layers
    encoder_heads: int = 4  # ViT heads
    encoder_checkpoint: str | None = None  # ViT only: released ViT/DeiT weights (timm names) to start from
    d_model: int = 128
    num_heads: int = 4
    prompt_latents: int = 16  # paper: 64
    state_latents: int = 8
    resampler_depth: int = 1
    fusion_depth: int = 2  # paper: 4 state->prompt cross-attention layers
    decoder_depth: int = 2  # paper: 4 action-decoder layers
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    embed_dim: int = 128  # width of the embeddings used by the alignment/contrastive losses
    blank_prompt: bool = False  # lower-bound baseline: the prompt video is replaced by zeros
    ce_weight: float = 1.0
    tcc_weight: float = 1.0
    vvcl_weight: float = 1.0
    vtcl_weight: float = 1.0
    # The robot-unit range of each action dimension mapped to the tokenizer's [-1, 1] (set by training from the
    # dataset's meta/stats.json; None: the data already lies in [-1, 1]). select_action returns robot units.
    action_low: tuple[float, ...] | None = None
    action_high: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for name in (
            "image_size",
            "state_frames",
            "action_dim",
            "horizon",
            "patch_size",
            "encoder_dim",
            "encoder_depth",
            "encoder_heads",
            "d_model",
            "num_heads",
            "prompt_latents",
            "state_latents",
            "resampler_depth",
            "fusion_depth",
            "decoder_depth",
            "mlp_ratio",
            "embed_dim",
        ):
            _check_positive(name, getattr(self, name))
        if self.prompt_frames < 2:
            raise ValueError(
                f"prompt_frames must be >= 2 (first and last are kept), got {self.prompt_frames}"
            )
        if self.action_bins < 2:
            raise ValueError(f"action_bins must be >= 2, got {self.action_bins}")
        if self.frame_encoder not in frame_encoder_names():
            raise ValueError(
                f"frame_encoder must be one of {frame_encoder_names()}, got {self.frame_encoder!r}"
            )
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by num_heads={self.num_heads}")
        if self.frame_encoder == "convnet" and self.image_size % 16:
            raise ValueError(
                f"frame_encoder='convnet' needs image_size divisible by 16, got {self.image_size}"
            )
        if self.frame_encoder in ("biformer", "efficientnet_lite0") and self.image_size % 32:
            raise ValueError(
                f"frame_encoder={self.frame_encoder!r} needs image_size divisible by 32, got {self.image_size}"
            )
        if self.frame_encoder == "vit":
            if self.encoder_dim % self.encoder_heads:
                raise ValueError(
                    f"encoder_dim={self.encoder_dim} is not divisible by encoder_heads={self.encoder_heads}"
                )
            if self.image_size % self.patch_size:
                raise ValueError(
                    f"image_size={self.image_size} is not divisible by patch_size={self.patch_size}"
                )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        check_loss_weights(self.loss_weights, type(self).__name__)
        self.action_low, self.action_high = check_action_range(
            self.action_low, self.action_high, self.action_dim
        )

    @property
    def loss_weights(self) -> dict[str, float]:
        """The objective's weight per term (``LOSS_TERMS``): this policy's own, read by ``Vid2RobotLoss``."""
        return {term: getattr(self, f"{term}_weight") for term in LOSS_TERMS}

    @classmethod
    def small(cls, **overrides: Any) -> Vid2RobotConfig:
        """Default CPU config: 96 px frames, conv frame encoder, d_model 128."""
        return cls(**overrides)

    @classmethod
    def paper(cls, **overrides: Any) -> Vid2RobotConfig:
        """Paper-size config: 224 px, ViT-B/16 frame encoder, 64 prompt latents, 4 fusion/decoder layers."""
        values: dict[str, Any] = dict(
            image_size=224,
            frame_encoder="vit",
            patch_size=16,
            encoder_dim=768,
            encoder_depth=12,
            encoder_heads=12,
            d_model=512,
            num_heads=8,
            prompt_latents=64,
            state_latents=32,
            resampler_depth=2,
            fusion_depth=4,
            decoder_depth=4,
            dropout=0.1,
            embed_dim=256,
        )
        values.update(overrides)
        return cls(**values)
