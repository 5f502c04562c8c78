"""A session's outgoing events as an async iterator, in the order they were emitted.

Emitting never waits: the session goes on (its timeouts included) whether or not a
consumer reads, and a slow consumer never holds up the worker stream. The stream ends
after the session's last event; a consumer that comes late still gets every event.

Spoken audio is the one large event: the stream counts the audio bytes emitted and not
yet taken, so the speaker can wait for the consumer instead of queueing a whole reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from theo.session.events import OutputAudio, SessionEvent


class EventStream:
    """An unbounded, ordered queue of events that ends once."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[SessionEvent | None] = asyncio.Queue()
        self._ended = False
        self._audio_backlog = 0
        self._taken = asyncio.Event()

    @property
    def ended(self) -> bool:
        """Whether the last event was emitted (more are ignored)."""
        return self._ended

    @property
    def audio_backlog(self) -> int:
        """Bytes of :class:`OutputAudio` emitted and not yet taken by the consumer."""
        return self._audio_backlog

    def emit(self, event: SessionEvent) -> None:
        """Append ``event``; ignored once the stream has ended."""
        if not self._ended:
            if isinstance(event, OutputAudio):
                self._audio_backlog += len(event.audio)
            self._queue.put_nowait(event)

    def end(self) -> None:
        """No event follows; consumers stop after the ones already emitted."""
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(None)
            self._taken.set()

    async def wait_audio_backlog(self, limit: int) -> None:
        """Return once at most ``limit`` audio bytes wait for the consumer (or it ended)."""
        while self._audio_backlog > limit and not self._ended:
            self._taken.clear()
            await self._taken.wait()

    def __aiter__(self) -> AsyncIterator[SessionEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[SessionEvent]:
        while True:
            event = await self._queue.get()
            if event is None:
                self._queue.put_nowait(None)  # the end, for any later consumer too
                return
            if isinstance(event, OutputAudio):
                self._audio_backlog -= len(event.audio)
                self._taken.set()
            yield event
