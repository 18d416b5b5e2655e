"""Keep a bad input stream from flooding the log: a new message always logs, a repeat at most once a period."""

from __future__ import annotations


class RepeatFilter:
    """``should_log(message, now)``: true for a message unlike the last one, or a repeat after ``period_s``."""

    def __init__(self, period_s: float = 1.0) -> None:
        self.period_s = period_s
        self._last: str | None = None
        self._last_time = float("-inf")

    def should_log(self, message: str, now: float) -> bool:
        if message != self._last or now - self._last_time >= self.period_s:
            self._last, self._last_time = message, now
            return True
        return False
