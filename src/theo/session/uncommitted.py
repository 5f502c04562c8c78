"""A session's uncommitted segment audio, and what each worker stream was sent of it.

Every byte of segment audio is written to the session's ring buffer first and stays
there, behind the read fence, until the segment's final is accepted and recorded in the
WAL. A :class:`Route` remembers, per segment, how far its stream was sent the audio and
whether it was sent the segment's end, so live audio sends only what the stream has not
had, and a new stream is sent everything from the start (a replay), the audio that
arrives while it is being sent included.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from theo.logging import get_logger
from theo.session.ring_buffer import BYTES_PER_SECOND, RingBuffer
from theo.session.wal import SessionWAL
from theo.types import StreamAudio
from theo.workers.stt_stream import WorkerStream

Correction = Callable[[StreamAudio], StreamAudio]
"""Rewrites an uncommitted segment's settings before it is sent again."""

log = get_logger("session.uncommitted")

_CHUNK_BYTES = BYTES_PER_SECOND // 2


@dataclass(slots=True)
class _Run:
    """Consecutive audio of a segment recorded with the same settings, up to ``end``."""

    end: int
    options: StreamAudio
    closed: bool = False
    """No later audio joins it: it is the first paused audio, whose end marks the pause."""


@dataclass(slots=True)
class _Pending:
    """An uncommitted segment: where its audio lies in the ring buffer, how it was sent.

    Audio that waited for a busy stream is sent in one go, but never across a change of
    settings: the worker learns where the speaker paused from where the first audio
    flagged ``speaker_paused`` ends, so that audio goes alone, and the worker decodes the
    same audio for a pause however busy the session's stream was.
    """

    start: int
    end: int
    options: StreamAudio
    runs: list[_Run] = dataclasses.field(default_factory=list)
    ended: bool = False

    def add(self, end: int, audio: StreamAudio) -> None:
        """Audio with ``audio``'s settings was written up to ring offset ``end``."""
        settings = dataclasses.replace(audio, audio_pcm16=b"", is_last=False)
        last = self.runs[-1] if self.runs else None
        if last is not None and not last.closed and last.options == settings:
            last.end = end
        else:
            first_paused = audio.speaker_paused and (
                last is None or not last.options.speaker_paused
            )
            self.runs.append(_Run(end, settings, closed=first_paused))
        self.end = end
        self.options = audio

    def run_at(self, offset: int) -> _Run:
        """The run holding the audio at ring offset ``offset`` (below :attr:`end`)."""
        # Runs end in ascending order; a long dictation holds many (a few per pause).
        return self.runs[bisect.bisect_right(self.runs, offset, key=lambda run: run.end)]


class Route:
    """A stream and what it was sent: per segment, the audio up to where, and its end."""

    def __init__(self, stream: WorkerStream) -> None:
        self.stream = stream
        self.sent: dict[int, int] = {}
        self.closed: set[int] = set()
        # One write in flight per call (the session's handler and its timer both send).
        self.lock = asyncio.Lock()

    def owes(self, segment: int, pending: _Pending) -> bool:
        """Whether ``segment`` has audio or its end still to be sent on this stream."""
        sent = self.sent.get(segment, pending.start)
        return sent < pending.end or (pending.ended and segment not in self.closed)


class UncommittedAudio:
    """The ring buffer's segment map and the WAL of one session.

    Args:
        ring: the session's ring buffer.
        session_id: for logs.
    """

    def __init__(self, ring: RingBuffer, session_id: str) -> None:
        self._ring = ring
        self._session_id = session_id
        self.wal = SessionWAL()
        self._pending: dict[int, _Pending] = {}

    @property
    def held(self) -> bool:
        """Whether some segment still waits for its final."""
        return bool(self._pending)

    def pending_bytes(self, segment_id: int) -> int:
        """Audio of an uncommitted segment held in the ring buffer."""
        pending = self._pending.get(segment_id)
        return pending.end - pending.start if pending is not None else 0

    def record(self, audio: StreamAudio) -> bool:
        """Keep ``audio`` until its segment's final; False for a segment already final.

        Raises:
            RingBufferFullError: the audio does not fit.
        """
        if self.wal.is_committed(audio.segment_id):
            return False  # the rest of a segment given up after a rejection
        pending = self._pending.get(audio.segment_id)
        if pending is None:
            start = self._ring.written
            pending = _Pending(start, start, audio)
            self._pending[audio.segment_id] = pending
        if audio.audio_pcm16:
            self._ring.write(audio.audio_pcm16)
            pending.add(self._ring.written, audio)
        pending.ended = pending.ended or audio.is_last
        return True

    def expects(self, segment_id: int) -> bool:
        """Whether a transcript of ``segment_id`` is wanted (not final yet, and sent)."""
        return not self.wal.is_committed(segment_id) and segment_id in self._pending

    def commit(self, segment_id: int) -> None:
        """The segment's final was accepted: release its audio, record it in the WAL."""
        del self._pending[segment_id]
        fence = min((p.start for p in self._pending.values()), default=self._ring.written)
        self.wal.commit(segment_id, fence)
        self._ring.commit(fence)

    def correct(self, correction: Correction | None) -> list[int]:
        """Apply ``correction`` to the uncommitted segments, or give them all up.

        Returns the segments given up: they are committed (their audio released) and each
        is owed an empty final.
        """
        if correction is not None:
            for pending in self._pending.values():
                pending.options = correction(pending.options)
                for run in pending.runs:
                    run.options = correction(run.options)
            return []
        given_up = sorted(self._pending)
        self._pending.clear()
        for segment in given_up:
            if not self.wal.is_committed(segment):
                self.wal.commit(segment, self._ring.written)
        self._ring.commit(self._ring.written)
        if given_up:
            log.warning("session_segments_given_up", session_id=self._session_id, ids=given_up)
        return given_up

    async def flush(self, route: Route, *, replay: bool = False) -> None:
        """Send ``route`` every uncommitted byte and segment end it has not had, in order.

        Raises:
            WorkerCrashError: the stream broke.
            InvalidRequestError: the worker refused a setting.
        """
        async with route.lock:
            for segment in sorted(self._pending):  # a copy: finals may commit meanwhile
                pending = self._pending.get(segment)
                while pending is not None and route.sent.get(segment, pending.start) < pending.end:
                    sent = route.sent.get(segment, pending.start)
                    run = pending.run_at(sent)
                    end = min(run.end, sent + _CHUNK_BYTES)
                    chunk = self._ring.read(sent, end)
                    options = _replayed(run.options) if replay else run.options
                    await route.stream.send(
                        dataclasses.replace(options, audio_pcm16=chunk, is_last=False)
                    )
                    route.sent[segment] = end
                    pending = self._pending.get(segment)  # the audio may have grown
                if pending is not None and pending.ended and segment not in route.closed:
                    # A segment's end is never a pause of the speaker.
                    options = _replayed(pending.options)
                    await route.stream.send(
                        dataclasses.replace(options, audio_pcm16=b"", is_last=True)
                    )
                    route.closed.add(segment)

    async def catch_up(self, route: Route) -> list[int]:
        """Send every uncommitted segment to a new stream, with what arrives meanwhile.

        Args:
            route: the new stream.

        Returns the segments sent. Once it returns, nothing is owed to the stream, and
        (with no await in between) the caller can let live audio through.

        Raises:
            WorkerCrashError: the stream broke.
            InvalidRequestError: the worker refused a setting.
        """
        replayed: list[int] = []
        while owed := [s for s, p in sorted(self._pending.items()) if route.owes(s, p)]:
            for segment in owed:
                if segment in replayed:
                    continue
                replayed.append(segment)
            await self.flush(route, replay=True)
        return replayed


def _replayed(options: StreamAudio) -> StreamAudio:
    # Audio sent again is not live: the speaker's pause is long over.
    return dataclasses.replace(options, speaker_paused=False)
