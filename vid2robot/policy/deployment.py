"""The LeRobot-style deployment interface shared by every policy: set_prompt / reset / select_action."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vid2robot.policy.action_normalization import ActionNormalizer, check_action_range
from vid2robot.policy.action_tokenizer import ActionTokenizer
from vid2robot.policy.checkpoint import read_policy_checkpoint
from vid2robot.policy.registry import policy_class
from vid2robot.policy.temporal_ensembling import TemporalEnsembler


class DeployablePolicy(nn.Module):
    """Base class: subclasses implement ``encode_prompt`` and ``action_logits`` (batched).

    ``select_action`` keeps the last ``state_frames`` frames itself (padding by repeating the episode's
    first frame) and, with ``horizon > 1``, replays the queued action chunk before predicting again, or, after
    ``set_temporal_ensembling(coeff)``, predicts a chunk every step and blends the overlapping chunks.
    Call ``eval()`` first (``load_policy`` returns policies in eval mode).
    """

    prompt_kind = "video"  # what set_prompt takes: "video" ([T, 3, S, S] float) or "task_index" (int)

    def prompt_from_batch(self, batch: dict[str, Any]) -> torch.Tensor:
        """The batched prompt this policy is conditioned on, from a ``PairedVideoDataset`` batch."""
        return batch["prompt_video"]

    def episode_prompt(self, task_index: int, video: torch.Tensor) -> torch.Tensor | int:
        """What ``set_prompt`` takes for an episode of task ``task_index`` shown by ``video``."""
        return video

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = ActionTokenizer(config.action_bins)
        self.action_normalizer = ActionNormalizer(config.action_low, config.action_high)
        self._prompt: torch.Tensor | None = None
        self._history: deque[torch.Tensor] = deque(maxlen=config.state_frames)
        self._queue: deque[torch.Tensor] = deque()
        self._ensembler: TemporalEnsembler | None = None

    def encode_prompt(self, prompt: torch.Tensor) -> torch.Tensor:
        """Batched prompt -> the encoding that ``action_logits`` consumes (cached by ``set_prompt``)."""
        raise NotImplementedError

    def action_logits(self, prompt_encoding: torch.Tensor, robot_video: torch.Tensor) -> torch.Tensor:
        """Encoded prompt + ``[B, T, 3, S, S]`` robot frames -> ``[B, horizon, action_dim, bins]``."""
        raise NotImplementedError

    def _check_single_prompt(self, prompt: torch.Tensor | int) -> torch.Tensor:
        """Validate one unbatched prompt and return it batched (size 1)."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def decode_actions(self, logits: torch.Tensor) -> torch.Tensor:
        """``[..., bins]`` logits -> actions ``[...]`` in the robot's units (argmax bin centre, unnormalised)."""
        return self.action_normalizer.unnormalize(self.tokenizer.decode(logits.argmax(dim=-1)))

    def encode_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Actions in the robot's units ``[...]`` -> the bin ids the policy is trained to predict."""
        return self.tokenizer.encode(self.action_normalizer.normalize(actions))

    def set_action_range(self, low: list[float] | None, high: list[float] | None) -> None:
        """Set the robot-unit range the tokenizer's [-1, 1] stands for (training does, from dataset statistics)."""
        self.config.action_low, self.config.action_high = check_action_range(
            low, high, self.config.action_dim
        )
        self.action_normalizer = ActionNormalizer(self.config.action_low, self.config.action_high)

    @torch.no_grad()
    def predict_action_chunk(self, prompt: torch.Tensor, robot_video: torch.Tensor) -> torch.Tensor:
        """Batched, stateless: ``[B, horizon, action_dim]`` actions for the last frame of each robot video."""
        return self.decode_actions(self.action_logits(self.encode_prompt(prompt), robot_video))

    @torch.no_grad()
    def set_prompt(self, prompt: torch.Tensor | int) -> None:
        """Encode the task prompt once and cache it; drops the previous prompt's pending actions."""
        self._prompt = self.encode_prompt(self._check_single_prompt(prompt))
        self._drop_pending_actions()

    def reset(self) -> None:
        """New episode: clear the robot-frame history and the pending actions (the prompt stays)."""
        self._history.clear()
        self._drop_pending_actions()

    def _drop_pending_actions(self) -> None:
        """Forget the chunks already predicted: the replay queue and the chunks being blended."""
        self._queue.clear()
        if self._ensembler is not None:
            self._ensembler.reset()

    @property
    def temporal_ensemble_coeff(self) -> float | None:
        """The blending coefficient in use, or None when chunks are replayed."""
        return None if self._ensembler is None else self._ensembler.coeff

    def set_temporal_ensembling(self, coeff: float | None) -> None:
        """Blend overlapping chunks with weights ``exp(-coeff * i)`` (ACT; 0.01 there); None replays chunks."""
        self._ensembler = None if coeff is None else TemporalEnsembler(coeff, self.config.horizon)
        self.reset()

    @torch.no_grad()
    def select_action(self, frame: torch.Tensor) -> torch.Tensor:
        """One control step: float ``[3, S, S]`` in [0, 1] -> float ``[action_dim]`` in the robot's units."""
        if self._prompt is None:
            raise RuntimeError("call set_prompt(...) before select_action(...)")
        size = self.config.image_size
        if not isinstance(frame, torch.Tensor) or tuple(frame.shape) != (3, size, size):
            shape = tuple(frame.shape) if isinstance(frame, torch.Tensor) else type(frame).__name__
            raise ValueError(f"frame must be a float tensor [3, {size}, {size}], got {shape}")
        if not torch.is_floating_point(frame):
            raise ValueError(f"frame must be float in [0, 1], got {frame.dtype}")
        frame = frame.to(self.device)
        if not self._history:
            self._history.extend([frame] * self.config.state_frames)
        else:
            self._history.append(frame)
        if self._ensembler is None and self._queue:
            return self._queue.popleft()
        window = torch.stack(tuple(self._history)).unsqueeze(0)
        chunk = self.decode_actions(self.action_logits(self._prompt, window))[0]
        if self._ensembler is not None:
            return self._ensembler.update(chunk)
        self._queue.extend(chunk)
        return self._queue.popleft()

    @classmethod
    def from_checkpoint(cls, path: str | Path, map_location: str | torch.device = "cpu") -> DeployablePolicy:
        """Load a policy saved by ``save_policy`` or a Lightning ``.ckpt`` that holds a ``cls`` (or a subclass),
        built as LeRobot's ``from_pretrained`` does: ``cls(cls.config_class.from_dict(saved config))``, then
        the weights, strictly; returned in eval mode."""
        saved = read_policy_checkpoint(path, map_location)
        target = policy_class(saved.policy_class, where=f"{path}: ")
        if not issubclass(target, cls):
            raise ValueError(f"{path} holds a {saved.policy_class}, not a {cls.__name__}")
        policy = target(target.config_class.from_dict(saved.trained_config()))
        saved.load_into(policy)
        return policy.to(map_location).eval()


def load_policy(path: str | Path, map_location: str | torch.device = "cpu") -> DeployablePolicy:
    """Load any policy of the package saved by ``save_policy`` or ``vid2robot-train``; eval mode."""
    return DeployablePolicy.from_checkpoint(path, map_location)
