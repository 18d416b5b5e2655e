"""Lightning module that trains any policy of ``vid2robot.policy`` with the Vid2Robot objective.

Checkpoints hold ``policy.*`` weights plus ``policy_class``/``policy_config`` hyper-parameters (plain
containers), which is what ``vid2robot.policy.load_policy`` reads; the loss's learnable parameters
(SigLIP temperature/bias, text projection) are saved for resume but are not part of the deployable policy.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from detection.training.schedule import adamw_with_warmup, parameter_groups
from vid2robot.policy import FrozenTextEncoder, Vid2RobotLoss, create_policy
from vid2robot.policy.action_normalization import MODES as NORMALIZATION_MODES
from vid2robot.policy.action_normalization import action_range


class PolicyModule(L.LightningModule):
    """Vid2Robot (or a baseline) + ``Vid2RobotLoss``; AdamW with linear warm-up and cosine decay."""

    def __init__(
        self,
        policy_class: str = "Vid2RobotPolicy",
        policy_config: dict[str, Any] | None = None,
        learning_rate: float = 3e-4,
        weight_decay: float = 0.01,
        warmup_steps: int = 100,
        use_task_text: bool = True,
        action_normalization: str = "auto",
    ) -> None:
        super().__init__()
        if action_normalization not in NORMALIZATION_MODES:
            raise ValueError(
                f"action_normalization must be one of {NORMALIZATION_MODES}, got {action_normalization!r}"
            )
        if learning_rate <= 0 or weight_decay < 0 or warmup_steps < 0:
            raise ValueError(
                f"need learning_rate > 0, weight_decay >= 0, warmup_steps >= 0; got "
                f"{learning_rate}, {weight_decay}, {warmup_steps}"
            )
        self.save_hyperparameters()
        self.policy = create_policy(policy_class, dict(policy_config or {}))
        self.loss = Vid2RobotLoss.from_config(self.policy.config)
        self._text_encoder: FrozenTextEncoder | None = None

    def _text_embeddings(self, batch: dict[str, Any]) -> torch.Tensor | None:
        if not self.hparams.use_task_text or "task" not in batch or self.loss.weights["vtcl"] == 0:
            return None
        if self._text_encoder is None:
            self._text_encoder = FrozenTextEncoder()
        return self._text_encoder.encode(list(batch["task"])).to(self.device)

    def _shared_step(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        prompt = self.policy.prompt_from_batch(batch)
        output = self.policy(prompt, batch["robot_video"], robot_trajectory=batch.get("robot_trajectory"))
        mask = ~batch["action_is_pad"] if "action_is_pad" in batch else None
        terms = self.loss(
            output,
            self.policy.action_normalizer.normalize(batch["actions"]),
            action_mask=mask,
            text_embeddings=self._text_embeddings(batch),
            task_labels=batch["task_index"],
        )
        with torch.no_grad():
            predicted = self.policy.decode_actions(output.action_logits.detach())
            error = (predicted - batch["actions"]).abs()
            if mask is not None:
                error = error[mask]
            terms["action_mae"] = error.mean()
        batch_size = batch["actions"].shape[0]
        for name, value in terms.items():
            self.log(
                f"{stage}/{name}",
                value,
                prog_bar=name in ("loss", "bin_accuracy"),
                batch_size=batch_size,
                sync_dist=stage != "train",
            )
        return terms["loss"]

    def setup(self, stage: str) -> None:
        """Set the action range from the dataset's statistics; refuse, before any step, a robot trajectory
        longer than the policy has time embeddings for."""
        data = getattr(self.trainer, "datamodule", None)
        if hasattr(data, "action_stats"):
            self._set_action_range(data)
        frames = getattr(data, "hparams", {}).get("robot_trajectory_frames", 0)
        resampler = getattr(self.policy, "prompt_resampler", None)
        if resampler is not None and frames > resampler.max_frames:
            raise ValueError(
                f"data.robot_trajectory_frames={frames} exceeds the {resampler.max_frames} frames this policy "
                f"embeds (max of prompt_frames and state_frames); lower it or raise "
                f"module.policy_config.prompt_frames"
            )

    def _set_action_range(self, data: Any) -> None:
        stats = data.action_stats
        limits = action_range(stats, self.hparams.action_normalization)
        low, high = (None, None) if limits is None else limits
        self.policy.set_action_range(low, high)
        # the checkpoint's hyper-parameters carry the range, so the saved policy decodes to robot units
        self.hparams.policy_config = self.policy.config.to_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to resume or fine-tune on data whose action range differs from the checkpoint's."""
        saved = checkpoint.get("hyper_parameters", {}).get("policy_config", {})
        ours = self.policy.config.to_dict()
        for key in ("action_low", "action_high"):
            mine, theirs = ours.get(key), saved.get(key)
            if (mine is None) != (theirs is None) or (
                mine is not None
                and not torch.allclose(torch.tensor(mine), torch.tensor(theirs), rtol=1e-5, atol=1e-6)
            ):
                raise ValueError(
                    f"the checkpoint's {key}={theirs} differs from this dataset's ({mine}): its statistics "
                    "(meta/stats.json) disagree with the data the checkpoint was trained on; train on the same "
                    "data, or start afresh (drop ckpt_path) to learn this dataset's range"
                )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def configure_optimizers(self) -> dict[str, Any]:
        groups = parameter_groups(
            self.named_parameters(), self.hparams.weight_decay, no_decay_prefixes=("loss.",)
        )
        return adamw_with_warmup(self, groups, self.hparams.learning_rate, self.hparams.warmup_steps)
