"""The session's write-ahead log: what was committed last, so recovery never repeats it.

In memory, one record replaced atomically per final: the id of the last segment whose
final was accepted, the ring-buffer offset up to which audio is committed, and when.
After a worker crash, segments up to ``segment_id`` are done (a final for one of them
is a duplicate) and audio from ``buffer_offset`` on is what must be sent again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WALCheckpoint:
    """The last commit of a session."""

    segment_id: int
    """The last segment whose final was accepted (0: none yet)."""
    buffer_offset: int
    """Ring-buffer offset (bytes) up to which audio is committed."""
    timestamp_ms: int
    """Wall-clock time of the commit, in Unix milliseconds (0: none yet)."""


class SessionWAL:
    """Holds the latest :class:`WALCheckpoint`; segment ids only move forward.

    Args:
        clock: Unix time in seconds; injectable for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last = WALCheckpoint(segment_id=0, buffer_offset=0, timestamp_ms=0)

    @property
    def last(self) -> WALCheckpoint:
        """The latest checkpoint."""
        return self._last

    @property
    def resume_segment_id(self) -> int:
        """The first segment that is not committed."""
        return self._last.segment_id + 1

    def is_committed(self, segment_id: int) -> bool:
        """Whether ``segment_id``'s final was already accepted."""
        return segment_id <= self._last.segment_id

    def commit(self, segment_id: int, buffer_offset: int) -> WALCheckpoint:
        """Record that ``segment_id`` is final and audio before ``buffer_offset`` is done.

        Raises:
            ValueError: the segment is not newer than the last commit, or the offset is older.
        """
        last = self._last
        if segment_id <= last.segment_id or buffer_offset < last.buffer_offset:
            raise ValueError(
                f"commit of segment {segment_id} at {buffer_offset} is not after "
                f"segment {last.segment_id} at {last.buffer_offset}"
            )
        self._last = WALCheckpoint(segment_id, buffer_offset, round(self._clock() * 1000))
        return self._last
