"""A session's outgoing events as an async iterator, in the order they were emitted.

Emitting never waits: the session goes on (its timeouts included) whether or not a
consumer reads, and a slow consumer never holds up the worker stream. The stream ends
after the session's last event; a consumer that comes late still gets every event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from theo.session.events import SessionEvent


class EventStream:
    """An unbounded, ordered queue of events that ends once."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[SessionEvent | None] = asyncio.Queue()
        self._ended = False

    @property
    def ended(self) -> bool:
        """Whether the last event was emitted (more are ignored)."""
        return self._ended

    def emit(self, event: SessionEvent) -> None:
        """Append ``event``; ignored once the stream has ended."""
        if not self._ended:
            self._queue.put_nowait(event)

    def end(self) -> None:
        """No event follows; consumers stop after the ones already emitted."""
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[SessionEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[SessionEvent]:
        while True:
            event = await self._queue.get()
            if event is None:
                self._queue.put_nowait(None)  # the end, for any later consumer too
                return
            yield event
