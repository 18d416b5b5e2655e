"""Rolling rate and latency statistics for /diagnostics and the benchmark (pure Python)."""

from __future__ import annotations

from collections import deque

import numpy as np


class RollingStats:
    """The last ``window`` event times and latencies: achieved rate (Hz) and latency percentiles (s)."""

    def __init__(self, window: int = 200) -> None:
        if window < 2:
            raise ValueError(f"window must be >= 2, got {window}")
        self._times: deque[float] = deque(maxlen=window)
        self._latencies: deque[float] = deque(maxlen=window)
        self.count = 0

    def add(self, now: float, latency_s: float | None = None) -> None:
        self._times.append(now)
        if latency_s is not None:
            self._latencies.append(latency_s)
        self.count += 1

    def rate_hz(self) -> float:
        """Events per second over the window (0 with fewer than two events)."""
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])

    def latency_percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of the latencies in seconds; NaN with none."""
        return float(np.percentile(self._latencies, q)) if self._latencies else float("nan")
