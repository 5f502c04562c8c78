"""A session's recent segment audio, kept until its final is in: the recovery copy.

A fixed ``bytearray`` allocated once per session, written circularly. Positions are
absolute byte offsets that only grow, so a segment is remembered as ``(start, end)``
whatever the wrap-around. The read fence is the offset of the oldest audio still waiting
for its final: everything before it is committed and may be overwritten, everything
after it is protected, and a write that would overwrite it is refused.
"""

from __future__ import annotations

from theo.audio.pcm import BYTES_PER_SAMPLE, ENGINE_SAMPLE_RATE

BYTES_PER_SECOND = ENGINE_SAMPLE_RATE * BYTES_PER_SAMPLE


class RingBufferFullError(RuntimeError):
    """A write would overwrite audio that is not committed yet."""


class RingBuffer:
    """Pre-allocated circular PCM16 buffer with a read fence.

    Args:
        capacity: size in bytes (even: PCM16 samples never straddle the end).
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0 or capacity % 2:
            raise ValueError("capacity must be a positive, even number of bytes")
        self._buffer = bytearray(capacity)
        self._view = memoryview(self._buffer)
        self._capacity = capacity
        self._written = 0
        self._fence = 0

    @classmethod
    def for_seconds(cls, seconds: float) -> RingBuffer:
        """A buffer holding ``seconds`` of 16 kHz mono PCM16."""
        return cls(max(2, round(seconds * BYTES_PER_SECOND / 2) * 2))

    def release(self) -> None:
        """Free the memory now (the session ended): nothing is written or read after this.

        A session's objects reference each other, so the session is freed by the cyclic
        garbage collector, which may run long after; the buffer is most of its memory.
        """
        self._buffer = bytearray()
        self._view = memoryview(self._buffer)

    @property
    def capacity(self) -> int:
        """Size in bytes."""
        return self._capacity

    @property
    def written(self) -> int:
        """Absolute offset one past the last byte written."""
        return self._written

    @property
    def fence(self) -> int:
        """Absolute offset of the oldest uncommitted byte (the read fence)."""
        return self._fence

    @property
    def uncommitted(self) -> int:
        """Bytes after the fence: protected until committed."""
        return self._written - self._fence

    @property
    def free(self) -> int:
        """Bytes that can be written without touching uncommitted audio."""
        return self._capacity - self.uncommitted

    @property
    def usage(self) -> float:
        """Share of the capacity held by uncommitted audio (0-1)."""
        return self.uncommitted / self._capacity

    def write(self, data: bytes) -> int:
        """Append ``data``; returns its absolute start offset.

        Raises:
            RingBufferFullError: ``data`` does not fit without crossing the fence.
        """
        size = len(data)
        if size > self.free:
            raise RingBufferFullError(
                f"{size} bytes do not fit: {self.uncommitted} of {self._capacity} uncommitted"
            )
        start = self._written
        position = start % self._capacity
        first = min(size, self._capacity - position)
        source = memoryview(data)
        self._view[position : position + first] = source[:first]
        if first < size:
            self._view[: size - first] = source[first:]
        self._written += size
        return start

    def read(self, start: int, end: int) -> bytes:
        """A copy of the bytes at absolute offsets ``[start, end)``.

        Raises:
            ValueError: the range is not entirely uncommitted, written audio.
        """
        if not self._fence <= start <= end <= self._written:
            raise ValueError(
                f"[{start}, {end}) is outside the uncommitted audio "
                f"[{self._fence}, {self._written})"
            )
        size = end - start
        position = start % self._capacity
        first = min(size, self._capacity - position)
        if first == size:
            return bytes(self._view[position : position + size])
        return bytes(self._view[position:]) + bytes(self._view[: size - first])

    def commit(self, offset: int) -> None:
        """Move the fence to ``offset``: the audio before it may now be overwritten.

        The fence never moves back; an offset past the written audio is clamped.
        """
        self._fence = max(self._fence, min(offset, self._written))
