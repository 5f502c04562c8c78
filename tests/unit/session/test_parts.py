"""The realtime session's own logic: ordered events and segment cutting on real speech."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from tests.helpers.audio import read_wav
from tests.helpers.server import FIXTURES
from theo.errors import InvalidRequestError
from theo.manifest import PreprocessingConfig
from theo.preprocessing.chain import PreprocessingChain
from theo.session.config import SessionConfig
from theo.session.outbox import OrderedOutbox
from theo.session.ring_buffer import RingBuffer
from theo.session.segmenter import SegmentAudio, Segmenter, SpeechEnded, SpeechStarted
from theo.vad.detector import VADDetector


def test_outbox_releases_segments_in_order() -> None:
    sent: list[str] = []

    async def send(event: dict[str, Any]) -> None:
        sent.append(event["type"])

    async def scenario() -> None:
        box = OrderedOutbox(send)
        await box.add(1, {"type": "start-1"})
        await box.add(2, {"type": "start-2"})  # held: segment 1 is not complete
        await box.add(1, {"type": "final-1"})
        assert box.has_open_segments()
        await box.complete(1)
        await box.add(2, {"type": "final-2"})
        await box.complete(2)
        await box.add(1, {"type": "late-1"})  # out of order: dropped
        await asyncio.wait_for(box.wait_idle(), 1)

    asyncio.run(scenario())
    assert sent == ["start-1", "final-1", "start-2", "final-2"]


def _segment_events(name: str, frame_ms: int = 20) -> list[Any]:
    samples, rate = read_wav(FIXTURES / name)
    audio = samples.astype(np.float32) / 32768.0
    chain = PreprocessingChain.build(PreprocessingConfig(), rate)
    segmenter = Segmenter(chain, VADDetector())
    step = rate * frame_ms // 1000
    events: list[Any] = []
    for start in range(0, audio.size, step):
        events.extend(segmenter.process(audio[start : start + step]))
    events.extend(segmenter.process(np.zeros(rate, dtype=np.float32)))
    return events


def test_segmenter_cuts_the_five_librivox_utterances() -> None:
    events = _segment_events("en_librivox.wav")
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(starts) == len(ends) == 5
    order = [type(e) for e in events if not isinstance(e, SegmentAudio)]
    assert order == [SpeechStarted, SpeechEnded] * 5
    # The pre-roll reaches back before the VAD's onset, never before the stream.
    assert all(0 <= s.offset <= s.onset for s in starts)
    # Every segment's audio is contiguous from its start to the VAD's end decision.
    sent = 0
    current = None
    for event in events:
        if isinstance(event, SpeechStarted):
            current, sent = event, event.offset
        elif isinstance(event, SegmentAudio):
            sent += event.samples.size
        elif current is not None:
            assert sent >= event.offset
    # The VAD's silence wait is flagged, so the worker may decode the final early.
    assert any(isinstance(e, SegmentAudio) and e.paused for e in events)


def test_segmenter_resamples_telephone_audio_on_the_session_clock() -> None:
    wide = _segment_events("en_librivox.wav")
    narrow = _segment_events("en_librivox_8k.wav")
    wide_starts = [e.onset for e in wide if isinstance(e, SpeechStarted)]
    narrow_starts = [e.onset for e in narrow if isinstance(e, SpeechStarted)]
    assert len(narrow_starts) == 5
    for a, b in zip(wide_starts, narrow_starts, strict=True):
        assert abs(a - b) < 16_000 * 0.25  # 16 kHz samples; the 8 kHz chain adds some delay


def test_session_config_updates_are_validated_as_a_whole() -> None:
    config = SessionConfig()
    updated = config.updated({"language": "pt-BR", "hot_words": "PIX, TED"})
    assert updated.language == "pt" and updated.hot_words == ["PIX", "TED"]
    assert config.language is None  # the old config is untouched
    for field, value in (("input_sample_rate", 4000), ("vad_sensitivity", "max"), ("x", 1)):
        with pytest.raises(InvalidRequestError) as info:
            config.updated({field: value})
        assert info.value.param == field


def test_a_released_ring_buffer_gives_its_memory_back() -> None:
    ring = RingBuffer.for_seconds(2.0)
    ring.write(bytes(3200))
    assert len(ring._buffer) == 64_000
    ring.release()
    assert len(ring._buffer) == 0
