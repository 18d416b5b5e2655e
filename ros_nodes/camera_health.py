"""Is the camera reaching the policy? Bookkeeping of frame arrivals for policy_node's log and /diagnostics
(pure Python: the node passes in times, stamps and the topic's publisher count).

A camera stream fails silently in DDS: a publisher is matched but its large frames are lost in transport, and
the policy's stale-image guard holds the robot still. ``CameraHealth.status`` names what it sees, with the
likely fix: no publisher; publishers but no frame for ``stall_s``; frames rejected; frames arriving slower
than the control rate, told apart by the image stamps into "lost on the way" (stamps that are at times much
closer together than usual) and "the camera is slower" (evenly spaced stamps).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

OK, SLOW, LOSSY, REJECTED = "ok", "slow", "lossy", "rejected"
NO_PUBLISHER, NO_FRAMES = "no publisher", "no frames"
PROBLEMS = (NO_PUBLISHER, NO_FRAMES, REJECTED, LOSSY)  # worth a warning; SLOW is reported, not warned about


@dataclass(frozen=True)
class CameraStatus:
    kind: str
    message: str
    frame_rate_hz: float  # accepted frames per second over the window
    last_frame_age_s: float  # since the last accepted frame (inf: none yet)
    publishers: int


class CameraHealth:
    """Arrivals of one camera topic. ``on_frame`` / ``on_rejected`` per message, ``status`` when asked.

    ``hint`` is the transport fix quoted when frames go missing (ros_nodes.dds_transport.transport_hint);
    ``started`` is when watching began (monotonic seconds).
    Rates are taken over the last ``window_s``; the stamp pattern over the last ``history`` frames.
    """

    def __init__(
        self, topic: str, control_rate_hz: float, hint: str, started: float = 0.0, stall_s: float = 2.0,
        window_s: float = 4.0, history: int = 50, slow_fraction: float = 0.8,
    ) -> None:  # fmt: skip
        self.topic, self.control_rate_hz, self.hint = topic, control_rate_hz, hint
        self.stall_s, self.window_s, self.slow_fraction = stall_s, window_s, slow_fraction
        self._frames: deque[tuple[float, float]] = deque(maxlen=history)  # accepted: (arrival, stamp)
        self._arrivals: deque[float] = deque()  # accepted, within the last window_s
        self._rejected: deque[float] = deque(maxlen=history)
        self._last_error = ""
        self._first_frame: float | None = None
        self._publishers_since: float | None = None
        self._started = started  # a camera that is not up yet gets stall_s from here
        self.frames = 0

    def on_frame(self, now: float, stamp_s: float) -> None:
        self._frames.append((now, stamp_s))
        self._arrivals.append(now)
        self.frames += 1
        if self._first_frame is None:
            self._first_frame = now

    def on_rejected(self, now: float, error: str) -> None:
        self._rejected.append(now)
        self._last_error = error

    def status(self, now: float, publishers: int) -> CameraStatus:
        if publishers == 0:
            self._publishers_since = None
        elif self._publishers_since is None:
            self._publishers_since = now
        last = self._frames[-1][0] if self._frames else None
        age = float("inf") if last is None else now - last
        while self._arrivals and self._arrivals[0] <= now - self.window_s:
            self._arrivals.popleft()
        rate = len(self._arrivals) / self.window_s

        def result(kind: str, message: str) -> CameraStatus:
            return CameraStatus(kind, message, rate, age, publishers)

        if publishers == 0 and age > self.stall_s and now - self._started > self.stall_s:
            return result(
                NO_PUBLISHER,
                f"no publisher on camera topic {self.topic}: is the camera running, is the topic remapped "
                "(image:=...), and does image_transport match what it publishes (raw: 'image', compressed: "
                "'image/compressed')?",
            )
        recent_rejections = sum(1 for t in self._rejected if t > now - self.window_s)
        if recent_rejections and age > self.stall_s:
            return result(
                REJECTED,
                f"camera {self.topic}: {recent_rejections} frames rejected in the last {self.window_s:g} s "
                f"and none accepted: {self._last_error}",
            )
        silent_since = last if last is not None else self._publishers_since
        if publishers > 0 and silent_since is not None and now - silent_since > self.stall_s:
            return result(
                NO_FRAMES,
                f"camera {self.topic} has {publishers} publisher{'s' if publishers > 1 else ''} but no frame "
                f"for {now - silent_since:.1f} s: {self.hint}",
            )
        observed = self._first_frame is not None and now - self._first_frame >= self.window_s
        if not observed or rate >= self.slow_fraction * self.control_rate_hz:
            return result(OK, f"camera {self.topic}: {rate:.1f} frames/s")
        gaps = np.diff([stamp for _, stamp in self._frames])
        gaps = gaps[gaps > 0]
        closest, typical = (float(gaps.min()), float(np.median(gaps))) if len(gaps) else (0.0, 0.0)
        below = f"camera {self.topic} delivers {rate:.1f} frames/s, below control_rate_hz {self.control_rate_hz:g}"
        if closest > 0 and typical > 2.0 * closest:
            return result(
                LOSSY,
                f"{below}; its stamps are {1e3 * closest:.0f} ms apart at the closest but {1e3 * typical:.0f} ms "
                f"typically, so frames are lost on the way: {self.hint}",
            )
        return result(
            SLOW,
            f"{below} (stamps {1e3 * typical:.0f} ms apart): the policy acts once per new frame; raise the "
            "camera's rate or lower control_rate_hz",
        )
