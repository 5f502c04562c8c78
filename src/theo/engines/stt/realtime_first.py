"""Realtime before batch at the engine: a batch request's next engine call waits while
realtime work (partial passes, finals) is queued or running, at most ``max_wait_s``.

A worker's batch and realtime decodes run on two threads over one engine that does one
call at a time. Left alone, the two take turns call by call, so a live session's final
waits behind a batch request's encoder pass or generation. Here the batch thread asks for
its turn before every engine call (see :meth:`BatchControl.checkpoint`) and only gets it
when the realtime thread has nothing to do, or after waiting ``max_wait_s`` (aging, so a
server that is busy with live sessions still makes progress on batch work). A call that
already runs is never interrupted: realtime work waits at most for one engine call.
"""

from __future__ import annotations

import threading
import time

from theo.engines.stt.priority_executor import PriorityExecutor

_CANCEL_POLL_S = 0.01
"""How often a waiting batch call looks at its cancel flag."""


class RealtimeFirst:
    """Grants batch engine calls their turn: when the realtime executor is idle, or aged."""

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

    def wait_turn(self, cancel: threading.Event) -> None:
        """Block until a batch call may run; return early once ``cancel`` is set."""
        if self._realtime.wait_idle(0):
            return
        started = time.monotonic()
        deadline = started + self._max_wait_s
        aged = True
        while not cancel.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self._realtime.wait_idle(min(remaining, _CANCEL_POLL_S)):
                aged = False
                break
        else:
            aged = False
        with self._lock:
            self.waited += 1
            self.aged += aged
            self.wait_s += time.monotonic() - started
