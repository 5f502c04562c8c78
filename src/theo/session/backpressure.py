"""Backpressure: a client must not send audio faster than real time for long.

The session's audio clock is compared with the wall clock through a leaky bucket: each
accepted frame adds its duration to the backlog, and the backlog drains at real-time
pace (never below zero, so idle time earns no credit for a later burst). A real-time
client keeps the backlog near one frame, whatever its jitter. Past ``rate_limit_after_s``
the client is told to pause (``session.rate_limit``, at most once per report interval);
past ``max_backlog_s`` frames are dropped until the backlog has drained to half of it,
so what is kept stays in contiguous runs, and the drops are reported
(``session.frames_dropped``) as they accumulate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Admission:
    """The verdict on one frame and what to tell the client about it."""

    accepted: bool
    rate_limit_ms: int | None = None
    """When set, send ``session.rate_limit`` asking for a pause this long."""
    dropped_ms: int | None = None
    """When set, send ``session.frames_dropped`` reporting this much newly dropped audio."""


class BackpressureController:
    """Per-session rate limiting on the audio clock.

    Args:
        max_backlog_s: audio ahead of real time beyond which frames are dropped.
        rate_limit_after_s: audio ahead of real time beyond which the client is asked to slow.
        report_interval_s: at most one rate-limit and one drop report per interval.
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        *,
        max_backlog_s: float = 10.0,
        rate_limit_after_s: float = 2.0,
        report_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_backlog_s = max_backlog_s
        self._resume_below_s = max_backlog_s / 2
        self._rate_limit_after_s = rate_limit_after_s
        self._interval_s = report_interval_s
        self._clock = clock
        self._backlog_s = 0.0
        self._last_frame: float | None = None
        self._dropping = False
        self._unreported_drop_s = 0.0
        self._last_drop_report = float("-inf")
        self._last_rate_limit = float("-inf")
        self._dropped_total_s = 0.0

    @property
    def backlog_s(self) -> float:
        """Audio accepted ahead of real time, as of the last frame."""
        return self._backlog_s

    @property
    def dropped_total_ms(self) -> int:
        """All audio dropped so far in this session."""
        return round(self._dropped_total_s * 1000)

    def admit(self, duration_s: float) -> Admission:
        """Decide on a frame of ``duration_s`` seconds that arrived now."""
        now = self._clock()
        if self._last_frame is not None:
            self._backlog_s = max(0.0, self._backlog_s - (now - self._last_frame))
        self._last_frame = now
        if self._dropping and self._backlog_s <= self._resume_below_s:
            self._dropping = False
        elif not self._dropping and self._backlog_s + duration_s > self._max_backlog_s:
            self._dropping = True
        if self._dropping:
            dropped_ms = self.drop(duration_s)
            return Admission(False, rate_limit_ms=self._rate_limit(now), dropped_ms=dropped_ms)
        self._backlog_s += duration_s
        return Admission(True, rate_limit_ms=self._rate_limit(now), dropped_ms=self.flush())

    def drop(self, duration_s: float) -> int | None:
        """Count ``duration_s`` of audio dropped for any reason; returns a report when due."""
        self._dropped_total_s += duration_s
        self._unreported_drop_s += duration_s
        if self._clock() - self._last_drop_report < self._interval_s:
            return None
        return self.flush()

    def flush(self) -> int | None:
        """Dropped audio not reported yet, in ms (None if there is none)."""
        if self._unreported_drop_s <= 0:
            return None
        dropped_ms = max(1, round(self._unreported_drop_s * 1000))
        self._unreported_drop_s = 0.0
        self._last_drop_report = self._clock()
        return dropped_ms

    def _rate_limit(self, now: float) -> int | None:
        if self._backlog_s <= self._rate_limit_after_s:
            return None
        if now - self._last_rate_limit < self._interval_s:
            return None
        self._last_rate_limit = now
        # Pausing this long brings the client back to real time.
        return round(self._backlog_s * 1000)
