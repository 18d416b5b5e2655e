"""Which frames of a video the policy sees: the prompt subsample and the robot-state window."""

from __future__ import annotations

import numpy as np


def sample_prompt_frames(num_frames_total: int, k: int) -> list[int]:
    """``k`` evenly spaced indices into a video of ``num_frames_total`` frames, first and last included.

    Vid2Robot samples 16 prompt frames with the first and last always kept; shorter videos repeat frames.
    """
    if num_frames_total < 1:
        raise ValueError(f"num_frames_total must be >= 1, got {num_frames_total}")
    if k < 2:
        raise ValueError(f"k must be >= 2 so that the first and last frames are both kept, got {k}")
    return [int(i) for i in np.rint(np.linspace(0, num_frames_total - 1, k))]


def state_window_indices(step: int, k: int) -> list[int]:
    """Indices of the ``k`` frames ending at ``step``, padded at the start by repeating frame 0.

    This is the window that ``select_action`` builds online, so datasets should use it too.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return [max(0, step - k + 1 + i) for i in range(k)]
