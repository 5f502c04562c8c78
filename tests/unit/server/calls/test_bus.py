"""The call event bus: per-subscriber filters and bounded queues."""

from __future__ import annotations

import asyncio

from theo.server.calls.bus import CallEventBus


def _event(call_id: str, n: int) -> dict[str, object]:
    return {"type": "transcript.final", "call_id": call_id, "n": n}


def test_every_subscriber_gets_the_events_in_order_and_a_filter_keeps_one_call() -> None:
    async def scenario() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        bus = CallEventBus()
        everything = bus.subscribe()
        one = bus.subscribe("b")
        for n in range(3):
            bus.publish(_event("a", n))
            bus.publish(_event("b", n))
        return await everything.next_batch(), await one.next_batch()

    everything, one = asyncio.run(scenario())
    assert [(e["call_id"], e["n"]) for e in everything] == [
        ("a", 0),
        ("b", 0),
        ("a", 1),
        ("b", 1),
        ("a", 2),
        ("b", 2),
    ]
    assert [(e["call_id"], e["n"]) for e in one] == [("b", 0), ("b", 1), ("b", 2)]


def test_a_subscriber_that_falls_behind_is_dropped_and_told_not_the_others() -> None:
    async def scenario() -> tuple[bool, list[dict[str, object]], int, int]:
        bus = CallEventBus(max_queued=5)
        slow = bus.subscribe()
        fast = bus.subscribe()
        received = 0
        for n in range(20):
            bus.publish(_event("a", n))
            if n % 3 == 2:
                received += len(await fast.next_batch())
        received += len(await fast.next_batch())
        return slow.overflowed, await slow.next_batch(), received, bus.subscriber_count

    overflowed, slow_batch, fast_received, subscribers = asyncio.run(scenario())
    assert overflowed
    assert slow_batch == []  # nothing more: its connection reports the overflow and closes
    assert fast_received == 20
    assert subscribers == 1


def test_unsubscribed_gets_nothing_more() -> None:
    async def scenario() -> int:
        bus = CallEventBus()
        subscription = bus.subscribe()
        bus.unsubscribe(subscription)
        bus.publish(_event("a", 0))
        return bus.subscriber_count

    assert asyncio.run(scenario()) == 0
