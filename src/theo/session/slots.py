"""The realtime sessions open on one server, held to ``THEO_SESSION__MAX_SESSIONS``.

Each session holds a worker stream and a pre-allocated ring buffer (and its transport's
connection), so an unlimited number would let clients exhaust memory and the workers'
time. Every transport takes its sessions' places from the same counter.
"""

from __future__ import annotations


class Slot:
    """One open session's place in :class:`SessionSlots`; giving it back twice is harmless."""

    def __init__(self, slots: SessionSlots) -> None:
        self._slots: SessionSlots | None = slots

    def release(self) -> None:
        """Give the place back (the first call only)."""
        if self._slots is not None:
            self._slots.open -= 1
            self._slots = None


class SessionSlots:
    """Counts open sessions against a limit.

    Taking and counting happen without an ``await`` in between, so the event loop makes
    them atomic.
    """

    def __init__(self) -> None:
        self.open = 0

    def take(self, limit: int) -> Slot | None:
        """A place for one more session, or None when ``limit`` are open."""
        if self.open >= limit:
            return None
        self.open += 1
        return Slot(self)
