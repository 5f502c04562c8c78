"""A call's spoken replies, played into its transport in real time.

The session's speaker sends a reply's audio as fast as the TTS worker makes it; a phone
line takes it one 20 ms frame at a time. :class:`Playout` queues the PCM16 audio and one
task hands it to the transport frame by frame on an absolute 20 ms clock (no drift from
sleep overshoot). Audio that stops arriving ends a talkspurt: the next audio starts a new
one, so an RTP sender can set the marker bit and move its timestamp on by the pause.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from theo.logging import get_logger

log = get_logger("calls.playout")

FRAME_MS = 20
"""The packet time of every telephony transport Theo serves."""
_MAX_LATE_S = 0.2
"""Behind the clock by more than this (a stalled loop), playback restarts the clock
instead of sending a burst of frames."""

FrameSink = Callable[[bytes, bool], None]
"""Sends one frame of PCM16 little-endian audio; the flag is True for a talkspurt's
first frame."""


class Playout:
    """Queues reply audio and plays it 20 ms at a time.

    Args:
        sample_rate: the call's audio rate (the replies arrive at it).
        send: the transport's frame sender; it must not block.
        name: for the task's name and logs (the call id).
    """

    def __init__(self, sample_rate: int, send: FrameSink, name: str) -> None:
        self._frame_bytes = sample_rate * FRAME_MS // 1000 * 2
        self._send = send
        self._name = name
        self._queue: deque[tuple[str, bytearray]] = deque()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def play(self, request_id: str, pcm16: bytes) -> None:
        """Queue ``pcm16`` (a piece of reply ``request_id``) after what is queued."""
        if not pcm16:
            return
        if self._queue and self._queue[-1][0] == request_id:
            self._queue[-1][1].extend(pcm16)
        else:
            self._queue.append((request_id, bytearray(pcm16)))
        self._ready.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"playout-{self._name}")

    def drop(self, request_id: str | None = None) -> None:
        """Forget the queued audio of ``request_id``, or all of it (cancel, barge-in)."""
        kept = [(rid, audio) for rid, audio in self._queue if request_id not in (None, rid)]
        self._queue = deque(kept)

    async def close(self) -> None:
        """Stop playing; what is queued is dropped."""
        self._queue.clear()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _next_frame(self) -> bytes | None:
        """The next 20 ms of audio (the last piece padded with silence), or None."""
        frame = bytearray()
        while self._queue and len(frame) < self._frame_bytes:
            _, audio = self._queue[0]
            take = self._frame_bytes - len(frame)
            frame += audio[:take]
            del audio[:take]
            if not audio:
                self._queue.popleft()
        if not frame:
            return None
        return bytes(frame.ljust(self._frame_bytes, b"\0"))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        period = FRAME_MS / 1000
        while True:
            await self._ready.wait()
            self._ready.clear()
            start, sent, first = loop.time(), 0, True
            while (frame := self._next_frame()) is not None:
                try:
                    self._send(frame, first)
                except Exception as exc:  # a closed transport: the call is ending
                    log.info("playout_send_failed", call_id=self._name, error=str(exc))
                    self._queue.clear()
                    break
                sent, first = sent + 1, False
                delay = start + sent * period - loop.time()
                if delay < -_MAX_LATE_S:
                    start, sent = loop.time(), 0  # fell far behind: a new clock, no burst
                    continue
                await asyncio.sleep(max(delay, 0.0))
