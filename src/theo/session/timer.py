"""Runs a session state machine's timeouts on the event loop (one task per session)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from theo.session.state import SessionState, SessionStateMachine

OnTimeout = Callable[[SessionState, SessionState], Awaitable[None]]


class StateTimer:
    """Sleeps until the current state's deadline, then calls ``on_timeout(state, target)``.

    Call :meth:`poke` whenever the state or the timeouts change, so the sleep is redone
    against the new deadline. The task ends when the machine reaches CLOSED.
    """

    def __init__(
        self,
        machine: SessionStateMachine,
        on_timeout: OnTimeout,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._machine = machine
        self._on_timeout = on_timeout
        self._clock = clock
        self._poked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self, name: str) -> None:
        """Start the timer task."""
        self._task = asyncio.create_task(self._run(), name=name)

    def poke(self) -> None:
        """The state or its timeout changed: recompute the deadline."""
        self._poked.set()

    async def stop(self) -> None:
        """Cancel the timer task (unless it is the caller) and wait for it."""
        task = self._task
        if task is None or task is asyncio.current_task():
            return
        task.cancel()
        # Not ``await task``: suppressing its CancelledError would also swallow the
        # caller's own cancellation, which then looks like a normal return.
        await asyncio.wait({task})
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error

    async def _run(self) -> None:
        machine = self._machine
        while machine.state != SessionState.CLOSED:
            self._poked.clear()
            deadline = machine.deadline()
            if deadline is None:
                await self._poked.wait()
                continue
            remaining = deadline - self._clock()
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._poked.wait(), remaining)
                continue
            state, target = machine.state, machine.expired()
            if target is not None:
                await self._on_timeout(state, target)
            if machine.state == state and machine.deadline() == deadline:
                await self._poked.wait()  # the handler left the state as it was
