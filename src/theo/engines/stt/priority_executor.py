"""A one-thread executor that runs urgent calls (segment finals) before queued ones.

The realtime streams of a worker share one inference thread. With many sessions, partial
passes pile up behind each other; a final queued behind them would wait for all of them,
and a final is what a voice agent waits on. Work of equal priority runs first come,
first served. ``concurrent.futures`` has no priority executor, hence this small one.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

URGENT = 0
NORMAL = 1


class PriorityExecutor(Executor):
    """Runs submitted calls one at a time on its own thread, lowest priority number first."""

    def __init__(self, thread_name: str = "priority-executor") -> None:
        self._queue: list[tuple[int, int, Future[Any], Callable[[], Any]]] = []
        self._order = itertools.count()
        self._wakeup = threading.Condition()
        self._shutdown = False
        self._running = False
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Queue ``fn(*args, **kwargs)`` at normal priority."""
        return self.submit_with_priority(NORMAL, lambda: fn(*args, **kwargs))

    def submit_urgent(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Queue ``fn(*args, **kwargs)`` ahead of every normal-priority call not yet started."""
        return self.submit_with_priority(URGENT, lambda: fn(*args, **kwargs))

    def submit_with_priority(self, priority: int, call: Callable[[], T]) -> Future[T]:
        """Queue ``call``; lower ``priority`` numbers run first."""
        future: Future[T] = Future()
        with self._wakeup:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            heapq.heappush(self._queue, (priority, next(self._order), future, call))
            self._wakeup.notify_all()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; queued calls still run unless ``cancel_futures``."""
        with self._wakeup:
            self._shutdown = True
            if cancel_futures:
                for _, _, future, _ in self._queue:
                    future.cancel()
                self._queue.clear()
            self._wakeup.notify_all()
        if wait:
            self._thread.join()

    @property
    def pending(self) -> int:
        """Calls queued or running."""
        with self._wakeup:
            return len(self._queue) + self._running

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for nothing to be queued or running; True when idle."""
        with self._wakeup:
            return self._wakeup.wait_for(lambda: not self._queue and not self._running, timeout_s)

    def _run(self) -> None:
        while True:
            with self._wakeup:
                self._running = False
                if not self._queue:
                    self._wakeup.notify_all()  # idle: wake wait_idle callers
                while not self._queue and not self._shutdown:
                    self._wakeup.wait()
                if not self._queue:
                    return
                _, _, future, call = heapq.heappop(self._queue)
                self._running = True
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while queued (a pass superseded by its final)
            try:
                result = call()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
