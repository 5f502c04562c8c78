"""Audio that waited for a busy worker stream keeps the boundaries its settings mark.

The worker takes the end of the first audio flagged ``speaker_paused`` as the point where
the speaker paused, and decodes the words up to it for the segment's early final. Audio
that piles up while a write is in flight (a loaded machine) is sent in one go; if that
merged chunk carried the latest record's flag, the worker would see the pause later, or
not at all, and decode different audio than on an idle machine.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from theo.session.ring_buffer import RingBuffer
from theo.session.uncommitted import Route, UncommittedAudio
from theo.types import StreamAudio
from theo.workers.stt_stream import WorkerStream


class _SlowStream:
    """Records each send; the first one waits until released (a write in flight)."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bool, bool]] = []
        self.release = asyncio.Event()
        self.first_started = asyncio.Event()

    async def send(self, audio: StreamAudio) -> None:
        if not self.sent:
            self.first_started.set()
            await self.release.wait()
        self.sent.append((audio.audio_pcm16, audio.speaker_paused, audio.is_last))


def _audio(data: bytes, *, paused: bool = False, is_last: bool = False) -> StreamAudio:
    return StreamAudio(segment_id=1, audio_pcm16=data, is_last=is_last, speaker_paused=paused)


async def _flush_while_blocked(records: list[StreamAudio], *, replay: bool = False) -> Any:
    """Send the first record; the rest arrive while that write is in flight."""
    audio = UncommittedAudio(RingBuffer(1_000), "s")
    stream = _SlowStream()
    route = Route(cast(WorkerStream, stream))
    audio.record(records[0])
    first = asyncio.create_task(audio.flush(route, replay=replay))
    await stream.first_started.wait()
    later = []
    for record in records[1:]:
        audio.record(record)
        later.append(asyncio.create_task(audio.flush(route, replay=replay)))
    stream.release.set()
    await asyncio.gather(first, *later)
    return stream.sent


async def test_audio_piled_up_behind_a_write_keeps_where_the_pause_began() -> None:
    sent = await _flush_while_blocked(
        [
            _audio(b"aa"),
            _audio(b"bb"),
            _audio(b"cc", paused=True),
            _audio(b"dd", paused=True),
            _audio(b"ee", paused=True),
            _audio(b"ff"),
            _audio(b"", is_last=True),
        ]
    )
    assert sent == [
        (b"aa", False, False),
        (b"bb", False, False),
        (b"cc", True, False),  # alone: its end is where the worker marks the pause
        (b"ddee", True, False),
        (b"ff", False, False),
        (b"", False, True),
    ]


async def test_a_replay_sends_no_pause_whatever_was_recorded() -> None:
    sent = await _flush_while_blocked(
        [_audio(b"aa"), _audio(b"bb", paused=True), _audio(b"cc", paused=True)], replay=True
    )
    assert not any(paused for _, paused, _ in sent), sent
    assert b"".join(data for data, _, _ in sent) == b"aabbcc"
