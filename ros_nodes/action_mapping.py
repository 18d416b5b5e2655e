"""Policy action <-> robot command, shared by policy_node and sim_robot_node (same YAML, same scale).

The policy emits Meta-World-style ``[dx, dy, dz, gripper]`` in ``[-1, 1]``. Each xyz component is clamped
to ``[-1, 1]`` and scaled by ``max_linear_speed`` (m/s) into the end-effector linear velocity, expressed in the
robot base frame (``command_frame_id``); the gripper is clamped to ``[-1, 1]`` (-1 open, +1 close).
``command_to_action`` is the exact inverse for in-range actions.
"""

from __future__ import annotations

import math

import numpy as np


def _check_speed(max_linear_speed: float) -> None:
    if not math.isfinite(max_linear_speed) or max_linear_speed <= 0:
        raise ValueError(f"max_linear_speed must be a finite value > 0 m/s, got {max_linear_speed}")


def action_to_command(action: np.ndarray, max_linear_speed: float) -> tuple[np.ndarray, float]:
    """``[dx, dy, dz, gripper]`` -> (linear velocity ``float64 [3]`` in m/s, gripper in [-1, 1])."""
    _check_speed(max_linear_speed)
    action = np.asarray(action, dtype=np.float64)
    if action.shape != (4,):
        raise ValueError(f"action must have shape (4,) = [dx, dy, dz, gripper], got {action.shape}")
    clipped = np.clip(action, -1.0, 1.0)
    return clipped[:3] * max_linear_speed, float(clipped[3])


def command_to_action(linear: np.ndarray, gripper: float, max_linear_speed: float) -> np.ndarray:
    """(linear velocity m/s ``[3]``, gripper) -> Meta-World action ``float32 [4]`` in [-1, 1]."""
    _check_speed(max_linear_speed)
    linear = np.asarray(linear, dtype=np.float64)
    if linear.shape != (3,):
        raise ValueError(f"linear velocity must have shape (3,), got {linear.shape}")
    action = np.append(linear / max_linear_speed, gripper)
    return np.clip(action, -1.0, 1.0).astype(np.float32)
