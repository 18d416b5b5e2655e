"""Task-id oracle (upper bound): Vid2Robot with a learned task embedding in place of the prompt video."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vid2robot.policy.configuration_vid2robot import Vid2RobotConfig
from vid2robot.policy.loss_weights import ACTION_LOSS_ONLY
from vid2robot.policy.modeling_vid2robot import Vid2RobotPolicy
from vid2robot.policy.policy_output import Vid2RobotOutput
from vid2robot.policy.registry import register_policy


@dataclass
class TaskIdConfig(Vid2RobotConfig):
    """Vid2Robot sizes plus the number of task ids; the prompt is a task index ``[0, num_tasks)``."""

    num_tasks: int = 50  # every Meta-World v3 task index (MT10 are 0-9); a small table either way
    # The oracle is told the task, so it has no prompt video to align: the action loss alone.
    tcc_weight: float = 0.0
    vvcl_weight: float = 0.0
    vtcl_weight: float = 0.0

    @property
    def loss_weights(self) -> dict[str, float]:
        """The action loss alone, whatever alignment weights an older checkpoint's config holds."""
        return ACTION_LOSS_ONLY | {"ce": self.ce_weight}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {self.num_tasks}")
        if self.blank_prompt:
            raise ValueError("blank_prompt is meaningless for TaskIdPolicy; use Vid2RobotPolicy")


@register_policy
class TaskIdPolicy(Vid2RobotPolicy):
    """Same state encoder, fusion and action decoder; the prompt tokens are ``prompt_latents`` learned
    vectors per task, so the gap to Vid2Robot measures what is lost by inferring the task from video."""

    config_class = TaskIdConfig
    prompt_kind = "task_index"

    def __init__(self, config: TaskIdConfig | None = None) -> None:
        super().__init__(config or TaskIdConfig())

    def prompt_from_batch(self, batch: dict[str, Any]) -> torch.Tensor:
        return batch["task_index"]

    def episode_prompt(self, task_index: int, video: torch.Tensor) -> int:
        return task_index

    def _build_prompt_encoder(self, c: Vid2RobotConfig) -> None:
        self.task_embedding = nn.Embedding(c.num_tasks, c.prompt_latents * c.d_model)
        nn.init.normal_(self.task_embedding.weight, std=0.02)

    def encode_prompt(self, prompt: torch.Tensor) -> torch.Tensor:
        """Task indices ``[B]`` (int64) -> prompt tokens ``[B, prompt_latents, D]``."""
        if not isinstance(prompt, torch.Tensor) or prompt.dim() != 1 or prompt.dtype != torch.long:
            got = (
                f"{prompt.dtype} {tuple(prompt.shape)}" if isinstance(prompt, torch.Tensor) else type(prompt)
            )
            raise ValueError(f"TaskIdPolicy prompts are int64 task indices [B], got {got}")
        n = self.config.num_tasks
        if prompt.numel() and (prompt.min() < 0 or prompt.max() >= n):
            raise ValueError(
                f"task indices must lie in [0, num_tasks={n}), got {sorted(set(prompt.tolist()))}; raise "
                f"num_tasks above the largest index (training CLI: module.policy_config.num_tasks=...)"
            )
        return self.task_embedding(prompt).view(prompt.shape[0], self.config.prompt_latents, -1)

    def _check_single_prompt(self, prompt: torch.Tensor | int) -> torch.Tensor:
        if isinstance(prompt, torch.Tensor) and prompt.dim() == 0:
            prompt = int(prompt)
        if not isinstance(prompt, int):
            raise ValueError(f"TaskIdPolicy.set_prompt takes one int task index, got {type(prompt).__name__}")
        return torch.tensor([prompt], device=self.device)

    def forward(
        self,
        prompt: torch.Tensor,
        robot_video: torch.Tensor,
        *,
        robot_trajectory: torch.Tensor | None = None,
    ) -> Vid2RobotOutput:
        """Task indices ``[B]`` + state window -> logits; ``robot_trajectory`` is accepted and unused."""
        _, fused, weights = self._fused_state(self.encode_prompt(prompt), robot_video, need_weights=True)
        return Vid2RobotOutput(self.action_decoder(fused), fusion_attention=weights)
