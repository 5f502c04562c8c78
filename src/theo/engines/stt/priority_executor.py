"""An executor that runs urgent calls (segment finals) before queued ones, on a fixed
number of lanes (threads).

The realtime streams of a worker share its engine. With many sessions, partial passes pile
up behind each other; a final queued behind them would wait for all of them, and a final
is what a voice agent waits on. Work of equal priority runs first come, first served.
An engine that can run several calls at once (CTranslate2 replicas sharing one copy of
the weights) gets one lane per call it can run, so a final starts on a free lane instead
of waiting for a partial pass in flight. ``concurrent.futures`` has no priority executor,
hence this small one.
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
    """Runs submitted calls on ``lanes`` threads, lowest priority number first.

    Args:
        thread_name: the lanes' thread names (``-1``, ``-2``... appended past the first).
        lanes: calls run at once; :meth:`set_lanes` adds more later.
    """

    def __init__(self, thread_name: str = "priority-executor", lanes: int = 1) -> None:
        self._queue: list[tuple[int, int, Future[Any], Callable[[], Any]]] = []
        self._order = itertools.count()
        self._wakeup = threading.Condition()
        self._shutdown = False
        self._running = 0
        self.most_running = 0
        """The most calls that ran at once so far."""
        self._thread_name = thread_name
        self._threads: list[threading.Thread] = []
        self.set_lanes(lanes)

    @property
    def lanes(self) -> int:
        """Calls that can run at once."""
        return len(self._threads)

    def set_lanes(self, lanes: int) -> None:
        """Run up to ``lanes`` calls at once (lanes are only ever added)."""
        with self._wakeup:
            while len(self._threads) < lanes:
                index = len(self._threads)
                name = self._thread_name if index == 0 else f"{self._thread_name}-{index + 1}"
                thread = threading.Thread(target=self._run, name=name, daemon=True)
                self._threads.append(thread)
                thread.start()

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
            for thread in self._threads:
                thread.join()

    @property
    def pending(self) -> int:
        """Calls queued or running."""
        with self._wakeup:
            return len(self._queue) + self._running

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for nothing to be queued or running; True when idle."""
        with self._wakeup:
            return self._wakeup.wait_for(lambda: not self._queue and not self._running, timeout_s)

    def wait_free_lane(self, timeout_s: float, taken: int = 0) -> bool:
        """Wait up to ``timeout_s`` for a lane with nothing queued for it, besides ``taken``
        lanes busy with other work; True when one is."""
        with self._wakeup:
            return self._wakeup.wait_for(
                lambda: not self._queue and self._running + taken < len(self._threads), timeout_s
            )

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._queue and not self._shutdown:
                    self._wakeup.wait()
                if not self._queue:
                    return
                _, _, future, call = heapq.heappop(self._queue)
                self._running += 1
                self.most_running = max(self.most_running, self._running)
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = call()
                    except BaseException as exc:
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
                # else: cancelled while queued (a pass superseded by its final)
            finally:
                with self._wakeup:
                    self._running -= 1
                    self._wakeup.notify_all()  # a lane is free: wake waiters
