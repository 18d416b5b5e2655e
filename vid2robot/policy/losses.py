"""The Vid2Robot training objective (paper Sec. III-C): action cross-entropy plus three alignment terms.

``L = sum_k w_k L_k / sum_k w_k`` over the terms a batch supports, so equal weights give the paper's
``mean(CE, TCC, VVCL, VTCL)``. Terms whose inputs a policy does not produce (baselines) or a batch lacks
(no task text) are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vid2robot.policy.action_tokenizer import ActionTokenizer
from vid2robot.policy.loss_weights import LOSS_TERMS, check_loss_weights
from vid2robot.policy.policy_output import Vid2RobotOutput
from vid2robot.policy.siglip_loss import SigLIPLoss
from vid2robot.policy.temporal_cycle_consistency import temporal_cycle_consistency_loss
from vid2robot.policy.text_encoder import TEXT_DIM


class Vid2RobotLoss(nn.Module):
    """Holds the learnable loss parameters: SigLIP temperatures/biases and the text projection.

    These are training-only; a trainer optimises them beside the policy and they are not part of
    the policy checkpoint.
    """

    def __init__(
        self,
        action_bins: int = 256,
        embed_dim: int = 128,
        weights: Mapping[str, float] | None = None,
        text_dim: int = TEXT_DIM,
        tcc_temperature: float = 0.1,
        tcc_variance_lambda: float = 0.001,
    ) -> None:
        super().__init__()
        self.tokenizer = ActionTokenizer(action_bins)
        # one weight per LOSS_TERMS term; all 1 is the paper's objective, the mean of the four terms
        self.weights = check_loss_weights(dict.fromkeys(LOSS_TERMS, 1.0) if weights is None else weights)
        self.tcc_temperature = tcc_temperature
        self.tcc_variance_lambda = tcc_variance_lambda
        self.video_video = SigLIPLoss()
        self.video_text = SigLIPLoss()
        self.text_proj = nn.Linear(text_dim, embed_dim)

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> Vid2RobotLoss:
        """Bins, embedding width and the policy config's own ``loss_weights`` (each policy owns its terms)."""
        values = dict(action_bins=config.action_bins, embed_dim=config.embed_dim, weights=config.loss_weights)
        return cls(**(values | overrides))

    def forward(
        self,
        output: Vid2RobotOutput,
        actions: torch.Tensor,
        *,
        action_mask: torch.Tensor | None = None,
        text_embeddings: torch.Tensor | None = None,
        task_labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Returns ``loss`` (weighted mean), each computed term, and ``bin_accuracy`` (no grad).

        actions ``[B, horizon, action_dim]`` (or ``[B, action_dim]`` when horizon is 1) in [-1, 1];
        action_mask ``[B, horizon]`` bool marks valid chunk steps (padding past an episode's end);
        text_embeddings ``[B, 384]`` from ``FrozenTextEncoder``; task_labels ``[B]`` make same-task pairs
        positives in the contrastive terms.
        """
        logits = output.action_logits
        if actions.dim() == 2:
            actions = actions.unsqueeze(1)
        if actions.shape != logits.shape[:-1]:
            raise ValueError(
                f"actions must be {tuple(logits.shape[:-1])} to match the logits, got {tuple(actions.shape)}"
            )
        targets = self.tokenizer.encode(actions)
        ce = F.cross_entropy(logits.permute(0, 3, 1, 2), targets, reduction="none").mean(-1)  # [B, H]
        correct = (logits.argmax(-1) == targets).float().mean(-1)
        if action_mask is not None:
            if action_mask.shape != ce.shape:
                raise ValueError(f"action_mask must be {tuple(ce.shape)}, got {tuple(action_mask.shape)}")
            mask = action_mask.to(ce.dtype)
            ce_mean = (ce * mask).sum() / mask.sum().clamp_min(1)
            accuracy = (correct * mask).sum() / mask.sum().clamp_min(1)
        else:
            ce_mean, accuracy = ce.mean(), correct.mean()
        terms = {"ce": ce_mean}
        if output.prompt_frame_embeddings is not None and output.robot_frame_embeddings is not None:
            terms["tcc"] = temporal_cycle_consistency_loss(
                output.prompt_frame_embeddings,
                output.robot_frame_embeddings,
                self.tcc_temperature,
                self.tcc_variance_lambda,
            )
        if output.prompt_embedding is not None and output.robot_embedding is not None:
            terms["vvcl"] = self.video_video(output.prompt_embedding, output.robot_embedding, task_labels)
        if output.prompt_embedding is not None and text_embeddings is not None:
            terms["vtcl"] = self.video_text(
                output.prompt_embedding, self.text_proj(text_embeddings), task_labels
            )
        active = {k: v for k, v in terms.items() if self.weights[k] > 0}
        if not active:
            raise ValueError(f"no loss term with a positive weight is available (have {sorted(terms)})")
        total = sum(self.weights[k] * v for k, v in active.items()) / sum(self.weights[k] for k in active)
        return {"loss": total, **terms, "bin_accuracy": accuracy.detach()}
