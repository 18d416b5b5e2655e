"""BC-Z baseline (Jang et al. 2021): a ResNet-18-style image encoder whose blocks are FiLM-conditioned
(Perez et al. 2018: ``x * (1 + gamma(e)) + beta(e)``) on a pooled prompt-video embedding ``e``.

Actions use the same 256-bin head as Vid2Robot (BC-Z regressed them) so that the trainer, losses and
evaluators treat both alike; only the current (last) robot frame is used, as in BC-Z.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from detection.plain_config import PlainConfig
from vid2robot.policy.action_normalization import check_action_range
from vid2robot.policy.deployment import DeployablePolicy
from vid2robot.policy.film_resnet import FiLMResNet
from vid2robot.policy.loss_weights import ACTION_LOSS_ONLY
from vid2robot.policy.policy_output import Vid2RobotOutput
from vid2robot.policy.registry import register_policy
from vid2robot.policy.validation import check_same_batch, check_video


@dataclass
class BCZConfig(PlainConfig):
    """Defaults are the small CPU variant; ``paper()`` gives ResNet-18 widths and depths."""

    PRESETS: ClassVar[tuple[str, ...]] = ("paper",)

    image_size: int = 96
    prompt_frames: int = 16
    state_frames: int = 8  # accepted for interface parity with Vid2Robot; only the last frame is used
    action_dim: int = 4
    action_bins: int = 256
    horizon: int = 1
    widths: tuple[int, ...] = (16, 32, 64, 128)
    blocks_per_stage: tuple[int, ...] = (1, 1, 1, 1)
    embed_dim: int = 128
    hidden_dim: int = 256
    dropout: float = 0.0
    action_low: tuple[float, ...] | None = None  # robot-unit action range (as Vid2RobotConfig)
    action_high: tuple[float, ...] | None = None

    @property
    def loss_weights(self) -> dict[str, float]:
        """BC-Z trains on the action loss alone: it has no alignment terms (TCC, video-video, video-text)."""
        return dict(ACTION_LOSS_ONLY)

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        self.blocks_per_stage = tuple(int(b) for b in self.blocks_per_stage)
        if len(self.widths) != len(self.blocks_per_stage) or not self.widths:
            raise ValueError(
                f"widths {self.widths} and blocks_per_stage {self.blocks_per_stage} must pair up"
            )
        if min(self.widths) < 1 or min(self.blocks_per_stage) < 1 or any(w % 8 for w in self.widths):
            raise ValueError(f"widths must be positive multiples of 8 and blocks >= 1, got {self.widths}")
        for name in ("image_size", "prompt_frames", "state_frames", "action_dim", "horizon", "embed_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.action_bins < 2:
            raise ValueError(f"action_bins must be >= 2, got {self.action_bins}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        self.action_low, self.action_high = check_action_range(
            self.action_low, self.action_high, self.action_dim
        )

    @classmethod
    def small(cls, **overrides: Any) -> BCZConfig:
        return cls(**overrides)

    @classmethod
    def paper(cls, **overrides: Any) -> BCZConfig:
        values: dict[str, Any] = dict(
            image_size=224, widths=(64, 128, 256, 512), blocks_per_stage=(2, 2, 2, 2), embed_dim=512
        )
        values.update(overrides)
        return cls(**values)


@register_policy
class BCZPolicy(DeployablePolicy):
    """Prompt video -> per-frame ResNet features, mean over time -> embedding ``e``; current robot frame ->
    FiLM(e)-ResNet -> MLP -> ``[B, horizon, action_dim, bins]`` logits."""

    config_class = BCZConfig

    def __init__(self, config: BCZConfig | None = None) -> None:
        config = config or BCZConfig()
        super().__init__(config)
        self.prompt_encoder = FiLMResNet(config.widths, config.blocks_per_stage)
        self.prompt_proj = nn.Linear(self.prompt_encoder.out_dim, config.embed_dim)
        self.state_encoder = FiLMResNet(config.widths, config.blocks_per_stage, cond_dim=config.embed_dim)
        self.head = nn.Sequential(
            nn.Linear(self.state_encoder.out_dim, config.hidden_dim),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden_dim, config.horizon * config.action_dim * config.action_bins),
        )

    def encode_prompt(self, prompt: torch.Tensor) -> torch.Tensor:
        """Prompt video ``[B, Tp, 3, S, S]`` -> embedding ``[B, embed_dim]``."""
        check_video("prompt_video", prompt, self.config.image_size, self.config.prompt_frames)
        b, t = prompt.shape[:2]
        features = self.prompt_encoder(prompt.flatten(0, 1)).mean(dim=(2, 3)).view(b, t, -1).mean(1)
        return self.prompt_proj(features)

    def _check_single_prompt(self, prompt: torch.Tensor | int) -> torch.Tensor:
        if not isinstance(prompt, torch.Tensor) or prompt.dim() != 4:
            shape = tuple(prompt.shape) if isinstance(prompt, torch.Tensor) else type(prompt).__name__
            raise ValueError(f"set_prompt takes one video [T, 3, S, S], got {shape}")
        return prompt.unsqueeze(0).to(self.device)

    def action_logits(self, prompt_encoding: torch.Tensor, robot_video: torch.Tensor) -> torch.Tensor:
        check_video("robot_video", robot_video, self.config.image_size, self.config.state_frames)
        check_same_batch(prompt=prompt_encoding, robot_video=robot_video)
        features = self.state_encoder(robot_video[:, -1], prompt_encoding).mean(dim=(2, 3))
        c = self.config
        return self.head(features).view(-1, c.horizon, c.action_dim, c.action_bins)

    def forward(
        self,
        prompt_video: torch.Tensor,
        robot_video: torch.Tensor,
        *,
        robot_trajectory: torch.Tensor | None = None,
    ) -> Vid2RobotOutput:
        """Same contract as ``Vid2RobotPolicy.forward``; ``robot_trajectory`` is accepted and unused."""
        embedding = self.encode_prompt(prompt_video)
        return Vid2RobotOutput(self.action_logits(embedding, robot_video), prompt_embedding=embedding)
