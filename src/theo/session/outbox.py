"""Releases a session's events in segment order.

Transcripts come back from the worker asynchronously. Events are tagged with their
segment, and a segment's events are released only after the previous segment is
complete, so a client always sees speech_start, partials, final, speech_end per segment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

E = TypeVar("E")


class OrderedOutbox(Generic[E]):
    """Buffers per-segment events and sends them in segment order.

    Args:
        send: where released events go, one at a time, in order.
    """

    def __init__(self, send: Callable[[E], Awaitable[None]]) -> None:
        self._send = send
        self._pending: dict[int, list[E]] = {}
        self._complete: set[int] = set()
        self._flushed_upto = 0  # segments complete in order: ids <= this are done
        self._idle = asyncio.Event()
        self._idle.set()

    async def send_now(self, event: E) -> None:
        """Send an event that belongs to no segment (session-level)."""
        await self._send(event)

    async def add(self, segment_id: int, event: E) -> None:
        """Queue an event of ``segment_id``; sends whatever is releasable.

        Events for a segment already completed and flushed are dropped: they could
        only arrive out of order.
        """
        if segment_id <= self._flushed_upto:
            return
        self._pending.setdefault(segment_id, []).append(event)
        await self._release()

    async def complete(self, segment_id: int) -> None:
        """Mark ``segment_id`` as finished: later segments may now be released."""
        if segment_id <= self._flushed_upto:
            return
        self._complete.add(segment_id)
        self._pending.setdefault(segment_id, [])
        await self._release()

    def has_open_segments(self) -> bool:
        """Whether some segment has not been completed yet."""
        return any(seg not in self._complete for seg in self._pending)

    async def wait_idle(self) -> None:
        """Return once every segment seen so far is complete and sent."""
        await self._idle.wait()

    async def _release(self) -> None:
        try:
            await self._release_in_order()
        finally:
            if self.has_open_segments():
                self._idle.clear()
            else:
                self._idle.set()

    async def _release_in_order(self) -> None:
        # Every segment below the smallest pending one is complete and already sent.
        while self._pending:
            head = min(self._pending)
            events, self._pending[head] = self._pending[head], []
            for event in events:
                await self._send(event)
            if head not in self._complete:
                return
            del self._pending[head]
            self._complete.discard(head)
            self._flushed_upto = max(self._flushed_upto, head)
