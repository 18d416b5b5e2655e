"""Load a prompt video from disk into the policy's input (no ROS): file -> sampled, resized float frames."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from vid2robot.data.video_io import read_frames
from vid2robot.policy.frame_sampling import sample_prompt_frames
from vid2robot.policy.preprocess import frames_to_tensor

MIN_PROMPT_FRAMES = 2  # the first and the last frame of the task


def load_prompt_frames(path: str | Path) -> np.ndarray:
    """``uint8 [T, H, W, 3]`` RGB frames from an ``.npy`` array or a video file (``.mp4`` via PyAV)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt video {path} does not exist")
    if path.suffix == ".npy":
        try:
            frames = np.load(path, allow_pickle=False)
        except ValueError as err:  # object arrays (pickles) are never loaded; a broken header
            raise ValueError(
                f"{path}: expected a uint8 [T, H, W, 3] array saved with numpy.save ({err})"
            ) from None
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(
                f"{path}: expected a uint8 [T, H, W, 3] array, got {frames.dtype} {frames.shape}"
            )
    else:
        frames = read_frames(path)
    if len(frames) < MIN_PROMPT_FRAMES:
        raise ValueError(
            f"prompt video {path} has {len(frames)} frame(s); a prompt needs at least {MIN_PROMPT_FRAMES} "
            "(its first and last frames show where the task starts and ends): record the whole task"
        )
    return frames


class ShortPromptWarning(UserWarning):
    """A prompt video with fewer frames than the policy samples: frames repeat, little of the task shows."""


def prompt_tensor(path: str | Path, prompt_frames: int, image_size: int) -> torch.Tensor:
    """The prompt as ``set_prompt`` takes it: ``prompt_frames`` evenly spaced frames, float ``[k, 3, S, S]``."""
    frames = load_prompt_frames(path)
    if len(frames) < prompt_frames:
        warnings.warn(
            ShortPromptWarning(
                f"prompt video {path} has {len(frames)} frames but the policy samples {prompt_frames}: frames are "
                f"repeated; a video of the whole task with at least {prompt_frames} frames prompts it as trained"
            ),
            stacklevel=2,
        )
    return frames_to_tensor(frames[sample_prompt_frames(len(frames), prompt_frames)], image_size)
