"""The output format shared by Vid2Robot and its baselines, so trainer and evaluators treat them alike."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Vid2RobotOutput:
    """What a policy's ``forward`` returns; fields a policy cannot produce are ``None``.

    action_logits: ``[B, horizon, action_dim, bins]``, the action for the last robot frame first.
    prompt_frame_embeddings / robot_frame_embeddings: ``[B, T, E]`` per-frame embeddings (TCC).
    prompt_embedding / robot_embedding: ``[B, E]`` pooled video embeddings (contrastive losses).
    fusion_attention: ``[B, heads, state_latents, prompt_latents]`` of the last state->prompt layer.
    prompt_frame_attention: ``[B, Tp]`` how much the state tokens attend to each prompt frame (the
    fusion weights composed with the prompt resampler's weights over frames), rows sum to 1.
    """

    action_logits: torch.Tensor
    prompt_frame_embeddings: torch.Tensor | None = None
    robot_frame_embeddings: torch.Tensor | None = None
    prompt_embedding: torch.Tensor | None = None
    robot_embedding: torch.Tensor | None = None
    fusion_attention: torch.Tensor | None = None
    prompt_frame_attention: torch.Tensor | None = None
