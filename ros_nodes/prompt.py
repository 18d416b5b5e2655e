"""Load a prompt video from disk into the policy's input (no ROS): file -> sampled, resized float frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vid2robot.data.video_io import read_frames
from vid2robot.policy.frame_sampling import sample_prompt_frames
from vid2robot.policy.preprocess import frames_to_tensor


def load_prompt_frames(path: str | Path) -> np.ndarray:
    """``uint8 [T, H, W, 3]`` RGB frames from an ``.npy`` array or a video file (``.mp4`` via PyAV)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt video {path} does not exist")
    if path.suffix == ".npy":
        frames = np.load(path, allow_pickle=False)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"{path}: expected uint8 [T, H, W, 3] RGB, got {frames.dtype} {frames.shape}")
    else:
        frames = read_frames(path)
    if len(frames) == 0:
        raise ValueError(f"prompt video {path} has no frames")
    return frames


def prompt_tensor(path: str | Path, prompt_frames: int, image_size: int) -> torch.Tensor:
    """The prompt as ``set_prompt`` takes it: ``prompt_frames`` evenly spaced frames, float ``[k, 3, S, S]``."""
    frames = load_prompt_frames(path)
    return frames_to_tensor(frames[sample_prompt_frames(len(frames), prompt_frames)], image_size)
