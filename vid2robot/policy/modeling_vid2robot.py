"""Vid2Robot (Jain et al. 2024, arXiv 2403.12943, Sec. III): a video-conditioned robot policy.

prompt video -> shared frame encoder -> Perceiver resampler -> prompt tokens
robot frames -> shared frame encoder -> own resampler -> state tokens
state tokens x prompt tokens (cross-attention) -> action queries -> 256-bin logits per action dimension
"""

from __future__ import annotations

import torch
from torch import nn

from vid2robot.policy.action_decoder import ActionDecoder
from vid2robot.policy.configuration_vid2robot import Vid2RobotConfig
from vid2robot.policy.deployment import DeployablePolicy
from vid2robot.policy.frame_encoders import build_frame_encoder
from vid2robot.policy.perceiver_resampler import PerceiverResampler
from vid2robot.policy.policy_output import Vid2RobotOutput
from vid2robot.policy.registry import register_policy
from vid2robot.policy.state_prompt_fusion import StatePromptFusion
from vid2robot.policy.validation import check_same_batch, check_video


@register_policy
class Vid2RobotPolicy(DeployablePolicy):
    """Prompt encoder, state encoder, state-prompt fusion and action decoder (paper Fig. 2).

    With ``config.blank_prompt`` the prompt video is replaced by zeros (the lower-bound baseline), and the
    alignment embeddings are not returned since they carry no task information.
    """

    config_class = Vid2RobotConfig

    def __init__(self, config: Vid2RobotConfig | None = None) -> None:
        config = config or Vid2RobotConfig()
        super().__init__(config)
        c = config
        self.frame_encoder = build_frame_encoder(c)
        self._build_prompt_encoder(c)
        self.state_resampler = PerceiverResampler(
            c.d_model, c.state_latents, c.resampler_depth, c.num_heads, c.state_frames, c.mlp_ratio, c.dropout
        )
        self.fusion = StatePromptFusion(c.d_model, c.fusion_depth, c.num_heads, c.mlp_ratio, c.dropout)
        self.action_decoder = ActionDecoder(
            c.d_model,
            c.decoder_depth,
            c.num_heads,
            c.horizon,
            c.action_dim,
            c.action_bins,
            c.mlp_ratio,
            c.dropout,
        )

    def _build_prompt_encoder(self, c: Vid2RobotConfig) -> None:
        """The prompt resampler and the embedding heads of the alignment losses."""
        # The robot trajectory is also embedded through the prompt resampler (for TCC/VVCL), so it
        # needs time embeddings for whichever video is longer.
        self.prompt_resampler = PerceiverResampler(
            c.d_model, c.prompt_latents, c.resampler_depth, c.num_heads,
            max(c.prompt_frames, c.state_frames), c.mlp_ratio, c.dropout,
        )  # fmt: skip
        self.frame_head = nn.Sequential(nn.LayerNorm(c.d_model), nn.Linear(c.d_model, c.embed_dim))
        self.video_head = nn.Sequential(nn.LayerNorm(c.d_model), nn.Linear(c.d_model, c.embed_dim))

    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """``[B, T, 3, S, S]`` -> frame tokens ``[B, T, N, D]`` (one encoder for prompt and state)."""
        b, t = video.shape[:2]
        tokens = self.frame_encoder(video.flatten(0, 1))
        return tokens.view(b, t, *tokens.shape[1:])

    def _prompt_tokens(self, prompt_video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        check_video("prompt_video", prompt_video, self.config.image_size, self.config.prompt_frames)
        if self.config.blank_prompt:
            prompt_video = torch.zeros_like(prompt_video)
        frame_tokens = self.encode_frames(prompt_video)
        latents, weights = self.prompt_resampler(frame_tokens, need_weights=True)
        return frame_tokens, latents, weights

    def encode_prompt(self, prompt: torch.Tensor) -> torch.Tensor:
        """Prompt video ``[B, Tp, 3, S, S]`` -> prompt tokens ``[B, prompt_latents, D]``."""
        return self._prompt_tokens(prompt)[1]

    def _check_single_prompt(self, prompt: torch.Tensor | int) -> torch.Tensor:
        if not isinstance(prompt, torch.Tensor) or prompt.dim() != 4:
            shape = tuple(prompt.shape) if isinstance(prompt, torch.Tensor) else type(prompt).__name__
            size = self.config.image_size
            raise ValueError(f"set_prompt takes one video [T, 3, {size}, {size}], got {shape}")
        return prompt.unsqueeze(0).to(self.device)

    def _fused_state(
        self, prompt_tokens: torch.Tensor, robot_video: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        check_video("robot_video", robot_video, self.config.image_size, self.config.state_frames)
        check_same_batch(prompt=prompt_tokens, robot_video=robot_video)
        frame_tokens = self.encode_frames(robot_video)
        state, _ = self.state_resampler(frame_tokens)
        fused, weights = self.fusion(state, prompt_tokens, need_weights)
        return frame_tokens, fused, weights

    def action_logits(self, prompt_encoding: torch.Tensor, robot_video: torch.Tensor) -> torch.Tensor:
        """The deployment path: no attention weights are materialised."""
        return self.action_decoder(self._fused_state(prompt_encoding, robot_video)[1])

    def forward(
        self,
        prompt_video: torch.Tensor,
        robot_video: torch.Tensor,
        *,
        robot_trajectory: torch.Tensor | None = None,
    ) -> Vid2RobotOutput:
        """prompt ``[B, Tp, 3, S, S]``, robot state window ``[B, Ts, 3, S, S]`` (last frame = now).

        ``robot_trajectory`` (``[B, Tr, 3, S, S]``, ``Tr <= prompt_frames``): frames sampled over the whole
        robot episode for the alignment losses; without it the state window is used.
        """
        prompt_frames, prompt_tokens, resampler_weights = self._prompt_tokens(prompt_video)
        robot_frames, fused, fusion_weights = self._fused_state(prompt_tokens, robot_video, need_weights=True)
        logits = self.action_decoder(fused)
        frame_attention = prompt_frame_attention(fusion_weights, resampler_weights, prompt_video.shape[1])
        if self.config.blank_prompt:
            return Vid2RobotOutput(
                logits, fusion_attention=fusion_weights, prompt_frame_attention=frame_attention
            )
        if robot_trajectory is not None:
            max_frames = self.prompt_resampler.max_frames
            check_video("robot_trajectory", robot_trajectory, self.config.image_size, max_frames)
            check_same_batch(prompt_video=prompt_video, robot_trajectory=robot_trajectory)
            robot_frames = self.encode_frames(robot_trajectory)
        robot_tokens, _ = self.prompt_resampler(robot_frames)
        # Cycle consistency needs two frames on each side: a one-frame state window has no alignment term.
        aligned = robot_frames.shape[1] >= 2
        return Vid2RobotOutput(
            action_logits=logits,
            prompt_frame_embeddings=self.frame_head(prompt_frames.mean(2)) if aligned else None,
            robot_frame_embeddings=self.frame_head(robot_frames.mean(2)) if aligned else None,
            prompt_embedding=self.video_head(prompt_tokens.mean(1)),
            robot_embedding=self.video_head(robot_tokens.mean(1)),
            fusion_attention=fusion_weights,
            prompt_frame_attention=frame_attention,
        )


def prompt_frame_attention(
    fusion_weights: torch.Tensor, resampler_weights: torch.Tensor, num_frames: int
) -> torch.Tensor:
    """Compose state->latent and latent->frame attention (head-averaged) into ``[B, Tp]`` over frames.

    The resampler also attends to its own latents; that share is dropped and each latent's attention over
    the frame tokens renormalised, so the result is a distribution over prompt frames.
    """
    b, _, latents, context = resampler_weights.shape
    media = resampler_weights.mean(1)[..., : context - latents].reshape(b, latents, num_frames, -1).sum(-1)
    media = media / media.sum(-1, keepdim=True)
    return (fusion_weights.mean(1) @ media).mean(1)
