"""Fan-out of call events to ``WS /v1/calls/events`` subscribers, never slowing a call.

Publishing is synchronous and never waits: each subscriber has a bounded queue, and a
subscriber whose queue is full is dropped (told why by its own connection), not the call.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

Message = dict[str, Any]
"""One call event as a JSON object (it has ``type`` and ``call_id``)."""

DEFAULT_QUEUE_SIZE = 1_000


class Subscription:
    """One subscriber's queue of call events, optionally for one call only."""

    def __init__(self, call_id: str | None, max_queued: int) -> None:
        self.call_id = call_id
        self._max_queued = max_queued
        self._queue: deque[Message] = deque()
        self._ready = asyncio.Event()
        self.overflowed = False
        """Set when the subscriber fell ``max_queued`` events behind and was dropped."""

    def offer(self, message: Message) -> bool:
        """Queue ``message`` when it is for this subscriber; False once it overflowed."""
        if self.call_id is not None and message.get("call_id") != self.call_id:
            return True
        if len(self._queue) >= self._max_queued:
            self.overflowed = True
            self._ready.set()
            return False
        self._queue.append(message)
        self._ready.set()
        return True

    async def next_batch(self) -> list[Message]:
        """Wait for events and take every queued one (empty when it overflowed)."""
        await self._ready.wait()
        self._ready.clear()
        if self.overflowed:
            return []
        batch = list(self._queue)
        self._queue.clear()
        return batch


class CallEventBus:
    """Delivers every call's events to the current subscribers."""

    def __init__(self, max_queued: int = DEFAULT_QUEUE_SIZE) -> None:
        self._max_queued = max_queued
        self._subscribers: set[Subscription] = set()

    @property
    def subscriber_count(self) -> int:
        """Subscribers attached now."""
        return len(self._subscribers)

    def subscribe(self, call_id: str | None = None) -> Subscription:
        """A new subscriber, receiving the events published from now on."""
        subscription = Subscription(call_id, self._max_queued)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to ``subscription``."""
        self._subscribers.discard(subscription)

    def publish(self, message: Message) -> None:
        """Queue ``message`` for every interested subscriber; drop the ones that fell behind."""
        for subscription in list(self._subscribers):
            if not subscription.offer(message):
                self._subscribers.discard(subscription)
