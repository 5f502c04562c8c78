"""Realtime before batch at the engine: a batch request's next engine call waits while
realtime work (partial passes, finals) is queued or every engine lane is busy (with
realtime work or other batch calls), at most ``max_wait_s``.

A worker's batch and realtime decodes run on their own threads over one engine that runs
a fixed number of calls at once (its lanes). Left alone, the two take turns call by call,
so a live session's final waits behind a batch request's encoder pass or generation.
Here the batch thread asks for its turn before every engine call (see
:meth:`BatchControl.checkpoint`) and only gets it when a lane is free and no realtime
work is queued for it, or after waiting ``max_wait_s`` (aging, so a server that is busy
with live sessions still makes progress on batch work). A call that already runs is
never interrupted: realtime work waits at most for one engine call.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from theo.engines.stt.priority_executor import PriorityExecutor

_CANCEL_POLL_S = 0.01
"""How often a waiting batch call looks at its cancel flag."""


class RealtimeFirst:
    """Grants batch engine calls their turn: when a lane is free (neither realtime work
    nor other batch calls on it) and no realtime work is queued, or aged."""

    def __init__(self, realtime: PriorityExecutor, max_wait_s: float) -> None:
        self._realtime = realtime
        self._max_wait_s = max_wait_s
        self._lock = threading.Lock()
        self.waited = 0
        """Batch calls that had to wait for realtime work."""
        self.aged = 0
        """Batch calls that ran beside pending realtime work after waiting ``max_wait_s``."""
        self.wait_s = 0.0
        """Total time batch calls waited."""
        self._batch_running = 0

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Count a batch engine call as occupying a lane while it runs."""
        with self._lock:
            self._batch_running += 1
        try:
            yield
        finally:
            with self._lock:
                self._batch_running -= 1

    def _lane_free(self, timeout_s: float) -> bool:
        return self._realtime.wait_free_lane(timeout_s, taken=self._batch_running)

    def wait_turn(self, cancel: threading.Event) -> None:
        """Block until a batch call may run; return early once ``cancel`` is set."""
        if self._lane_free(0):
            return
        started = time.monotonic()
        deadline = started + self._max_wait_s
        aged = True
        while not cancel.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self._lane_free(min(remaining, _CANCEL_POLL_S)):
                aged = False
                break
        else:
            aged = False
        with self._lock:
            self.waited += 1
            self.aged += aged
            self.wait_s += time.monotonic() - started
