"""Pure-Python safety logic of the policy node (no ROS): e-stop latch, enable switch, stale input, clamps.

Each control tick asks ``SafetyGate.hold_reason`` whether the robot must hold (zero velocity) before running
the policy, then turns the policy's action into a ``Command`` with ``SafetyGate.command``, which refuses
non-finite actions and clamps speeds. Times are monotonic seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ros_nodes.action_mapping import action_to_command

ESTOP = "estop latched"
DISABLED = "disabled"
NO_IMAGE = "no image received yet"
STALE_IMAGE = "image stale"
INVALID_ACTION = "non-finite action"


def is_stale(now: float, last: float | None, timeout_s: float) -> bool:
    """True when nothing arrived yet or the last arrival is older than ``timeout_s``."""
    return last is None or now - last > timeout_s


@dataclass(frozen=True)
class Command:
    """What to publish: linear velocity (m/s, base frame), gripper (None: publish none), hold reason."""

    linear: np.ndarray
    gripper: float | None
    hold: str | None = None

    @staticmethod
    def zero(reason: str) -> Command:
        return Command(np.zeros(3), None, reason)


class SafetyGate:
    """E-stop latch (only ``release_estop`` clears it), enable switch, stale-image timeout, clamps, NaN guard.

    ``max_linear_speed`` scales and clamps each axis (see ``action_mapping``); ``max_speed_norm`` (m/s,
    0 disables) additionally caps the norm of the velocity vector, keeping its direction.
    """

    def __init__(self, image_timeout_s: float, max_linear_speed: float, max_speed_norm: float = 0.0) -> None:
        if not image_timeout_s > 0:
            raise ValueError(f"image_timeout_s must be > 0, got {image_timeout_s}")
        if not math.isfinite(max_linear_speed) or max_linear_speed <= 0:
            raise ValueError(f"max_linear_speed must be finite and > 0, got {max_linear_speed}")
        if not math.isfinite(max_speed_norm) or max_speed_norm < 0:
            raise ValueError(f"max_speed_norm must be finite and >= 0 (0 disables), got {max_speed_norm}")
        self.image_timeout_s = image_timeout_s
        self.max_linear_speed = max_linear_speed
        self.max_speed_norm = max_speed_norm
        self.enabled = True
        self._estop = False

    @property
    def estop_latched(self) -> bool:
        return self._estop

    def latch_estop(self) -> None:
        self._estop = True

    def release_estop(self) -> None:
        self._estop = False

    def hold_reason(self, now: float, last_image_time: float | None) -> str | None:
        """Why the robot must hold still now (None: the policy may run). E-stop wins over everything."""
        if self._estop:
            return ESTOP
        if not self.enabled:
            return DISABLED
        if last_image_time is None:
            return NO_IMAGE
        if is_stale(now, last_image_time, self.image_timeout_s):
            return STALE_IMAGE
        return None

    def command(self, action: np.ndarray) -> Command:
        """Policy action ``[dx, dy, dz, gripper]`` -> clamped command; non-finite actions become a hold."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (4,) or not np.all(np.isfinite(action)):
            return Command.zero(INVALID_ACTION)
        linear, gripper = action_to_command(action, self.max_linear_speed)
        norm = float(np.linalg.norm(linear))
        if self.max_speed_norm > 0 and norm > self.max_speed_norm:
            linear = linear * (self.max_speed_norm / norm)
        return Command(linear, gripper)
