"""One episode row per action from timed streams: at each action, the newest frame of every camera and the
newest state at or before the action's time (a recorder's or a rosbag importer's control ticks).

Streams arrive interleaved and a little out of order (another publisher, another topic), so an action is
resolved only once every stream has moved past its time, or once the newest time seen anywhere is
``max_age_s`` past it (a stream that stalls does not hold the others back). A camera frame or state older
than ``max_age_s`` at an action's time, or none at all, drops that row: it is counted per reason, never
filled with a stale picture. Times are integer nanoseconds on one clock (message stamps or arrival times).
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

STATE = "state"
ACTION = "action"
NEVER = -(2**63)


@dataclass
class AlignedEpisode:
    """The rows of one episode: ``frames[camera]`` uint8 ``[T, H, W, 3]``, ``actions [T, A]``, ``states [T, D]``
    and, per row, the time of the action and of the frame / state it was paired with (``stamps_ns``)."""

    frames: dict[str, np.ndarray]
    actions: np.ndarray
    states: np.ndarray
    stamps_ns: dict[str, np.ndarray]
    dropped: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.actions)

    def step_columns(self) -> dict[str, np.ndarray]:
        """The stamps as extra step columns of the episode format (``stamp_ns.action``, ``stamp_ns.<camera>``,
        ``stamp_ns.state``)."""
        return {f"stamp_ns.{name}": values for name, values in self.stamps_ns.items()}


class _Stream:
    """Samples of one stream ordered by time."""

    def __init__(self) -> None:
        self.times: list[int] = []
        self.values: list[object] = []

    def add(self, time_ns: int, value: object) -> None:
        at = bisect.bisect_right(self.times, time_ns)
        self.times.insert(at, time_ns)
        self.values.insert(at, value)

    def at_or_before(self, time_ns: int) -> tuple[int, object] | None:
        at = bisect.bisect_right(self.times, time_ns)
        return (self.times[at - 1], self.values[at - 1]) if at else None

    def drop_before(self, time_ns: int) -> None:
        """Forget samples older than the newest one at or before ``time_ns`` (which may still serve)."""
        keep = max(bisect.bisect_right(self.times, time_ns) - 1, 0)
        del self.times[:keep], self.values[:keep]


class StreamAligner:
    """Collects one episode's timed frames, states and actions and pairs them into rows (see the module doc)."""

    def __init__(self, cameras: tuple[str, ...], with_state: bool, max_age_s: float) -> None:
        if not cameras or len(set(cameras)) != len(cameras) or {STATE, ACTION} & set(cameras):
            raise ValueError(
                f"cameras must be distinct names other than {STATE!r} and {ACTION!r}, got {cameras}"
            )
        if not max_age_s > 0:
            raise ValueError(f"max_age_s must be > 0, got {max_age_s}")
        self.cameras, self.with_state = tuple(cameras), with_state
        self.max_age_ns = int(max_age_s * 1e9)
        self._streams = {name: _Stream() for name in (*self.cameras, *((STATE,) if with_state else ()))}
        self._pending: list[tuple[int, np.ndarray]] = []
        self._rows: list[tuple[int, np.ndarray, dict[str, tuple[int, object]]]] = []
        self.dropped: Counter = Counter()
        self._newest = NEVER

    def __len__(self) -> int:
        """Actions so far: rows resolved and actions still waiting for their frames (which may yet drop)."""
        return len(self._rows) + len(self._pending)

    def add_frame(self, camera: str, time_ns: int, frame: np.ndarray) -> None:
        if camera not in self.cameras:
            raise KeyError(f"unknown camera {camera!r}; this recording has {list(self.cameras)}")
        self._add(camera, time_ns, frame)

    def add_state(self, time_ns: int, state: np.ndarray) -> None:
        if not self.with_state:
            raise ValueError("this recording has no state stream")
        self._add(STATE, time_ns, np.asarray(state, np.float32))

    def add_action(self, time_ns: int, action: np.ndarray) -> None:
        bisect.insort(self._pending, (int(time_ns), np.asarray(action, np.float32)), key=lambda item: item[0])
        self._see(int(time_ns))

    def _add(self, name: str, time_ns: int, value: object) -> None:
        self._streams[name].add(int(time_ns), value)
        self._see(int(time_ns))

    def _see(self, time_ns: int) -> None:
        self._newest = max(self._newest, time_ns)
        self._resolve(final=False)

    def _resolve(self, final: bool) -> None:
        while self._pending:
            time_ns, action = self._pending[0]
            caught_up = all(s.times and s.times[-1] > time_ns for s in self._streams.values())
            if not (final or caught_up or self._newest > time_ns + self.max_age_ns):
                return
            self._pending.pop(0)
            self._pair(time_ns, action)
            for stream in self._streams.values():
                stream.drop_before(self._pending[0][0] if self._pending else time_ns)

    def _pair(self, time_ns: int, action: np.ndarray) -> None:
        matched: dict[str, tuple[int, object]] = {}
        for name, stream in self._streams.items():
            sample = stream.at_or_before(time_ns)
            if sample is None:
                self.dropped[f"no {name} yet"] += 1
                return
            if time_ns - sample[0] > self.max_age_ns:
                self.dropped[f"{name} older than {self.max_age_ns / 1e9:g} s"] += 1
                return
            matched[name] = sample
        self._rows.append((time_ns, action, matched))

    def finish(self) -> AlignedEpisode:
        """Resolve the actions still pending with what has arrived, and return the episode's rows."""
        self._resolve(final=True)
        if not self._rows:
            return AlignedEpisode(
                {}, np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), {}, self.dropped
            )
        rows = sorted(self._rows, key=lambda row: row[0])  # an action that arrived late is paired late
        frames = {cam: np.stack([m[cam][1] for _, _, m in rows]) for cam in self.cameras}
        actions = np.stack([action for _, action, _ in rows])
        states = (
            np.stack([m[STATE][1] for _, _, m in rows])
            if self.with_state
            else np.zeros((len(rows), 0), np.float32)
        )
        stamps = {ACTION: np.array([t for t, _, _ in rows], np.int64)}
        for name in self._streams:
            stamps[name] = np.array([m[name][0] for _, _, m in rows], np.int64)
        return AlignedEpisode(frames, actions, states, stamps, Counter(self.dropped))
