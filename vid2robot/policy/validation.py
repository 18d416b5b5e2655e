"""Input checks shared by every policy: clear ValueErrors instead of shape errors deep inside a layer."""

from __future__ import annotations

import torch


def check_video(name: str, video: torch.Tensor, image_size: int, max_frames: int) -> None:
    """``video`` must be float ``[B, T, 3, S, S]`` with ``1 <= T <= max_frames``."""
    if not isinstance(video, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(video).__name__}")
    if not torch.is_floating_point(video):
        raise ValueError(
            f"{name} must be float in [0, 1] (see preprocess.frames_to_tensor), got {video.dtype}"
        )
    expected = f"[B, T, 3, {image_size}, {image_size}]"
    if video.dim() != 5 or tuple(video.shape[2:]) != (3, image_size, image_size):
        raise ValueError(f"{name} must have shape {expected}, got {tuple(video.shape)}")
    if not 1 <= video.shape[1] <= max_frames:
        raise ValueError(f"{name} must have 1..{max_frames} frames, got T={video.shape[1]}")


def check_same_batch(**tensors: torch.Tensor) -> None:
    sizes = {name: t.shape[0] for name, t in tensors.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"batch sizes differ: {sizes}")
