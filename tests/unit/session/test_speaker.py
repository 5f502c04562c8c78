"""A session that speaks: tts.speak replies queued, streamed, cancelled; mute-on-speak.

The session core with the scripted STT stream and an in-memory synthesizer (``fakes``):
chunks of a constant tone at 16 kHz, released by the test when it wants to see a reply
mid-stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

import numpy as np
import pytest

from tests.unit.session.fakes import (
    FakeScheduler,
    FakeSynthesizer,
    RecordingMetrics,
    ScriptedStream,
    fake_context,
    speech_frames,
)
from theo.audio.g711 import ulaw_to_pcm16
from theo.errors import InvalidRequestError
from theo.session.config import SessionConfig
from theo.session.core import RealtimeSession
from theo.session.errors import ErrorCode
from theo.session.event_queue import EventStream
from theo.session.events import (
    ErrorEvent,
    OutputAudio,
    SessionClosed,
    SessionEvent,
    SpeakingEnded,
    SpeakingEndReason,
    SpeakingStarted,
    SpeechStart,
    TranscriptFinal,
)
from theo.session.speak_request import SpeakRequest
from theo.session.speaker import Speaker

E = TypeVar("E", bound=SessionEvent)


class Reader:
    """Reads a session's events under a deadline."""

    def __init__(self, session: RealtimeSession) -> None:
        self._events: AsyncIterator[SessionEvent] = aiter(session)
        self.seen: list[SessionEvent] = []

    async def until(self, kind: type[E], where: object = None) -> E:
        async with asyncio.timeout(5):
            async for event in self._events:
                self.seen.append(event)
                if isinstance(event, kind) and (where is None or where == _id(event)):
                    return event
        raise AssertionError(f"no {kind.__name__} in {self.seen}")

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.seen if isinstance(e, kind)]


def _id(event: SessionEvent) -> object:
    return getattr(event, "request_id", None)


async def _session(
    synthesizer: FakeSynthesizer, config: SessionConfig | None = None
) -> tuple[RealtimeSession, Reader]:
    context = fake_context(FakeScheduler(ScriptedStream()), synthesizer)
    session = RealtimeSession("sess_1", context, config or SessionConfig())
    reader = Reader(session)
    await session.start()
    return session, reader


def _metrics(session: RealtimeSession) -> RecordingMetrics:
    metrics = session.context.metrics
    assert isinstance(metrics, RecordingMetrics)
    return metrics


async def test_a_reply_is_announced_streamed_at_the_output_rate_and_ended() -> None:
    synthesizer = FakeSynthesizer(chunks=3, chunk_s=0.5)
    session, reader = await _session(synthesizer, SessionConfig(output_sample_rate=8_000))
    await session.speak({"text": "Hello there.", "request_id": "r1", "voice": "low"})
    started = await reader.until(SpeakingStarted)
    assert started == SpeakingStarted("r1", "fake-tts", "low", 8_000, "pcm16")
    ended = await reader.until(SpeakingEnded)
    assert (ended.request_id, ended.reason, ended.duration_ms) == ("r1", "done", 1500)
    audio = b"".join(e.audio for e in reader.of(OutputAudio))
    # 1.5 s of the 16 kHz tone resampled to 8 kHz: 12,000 samples, the tone's level kept.
    assert len(audio) == 2 * 12_000
    samples = np.frombuffer(audio, dtype="<i2")
    assert abs(int(np.median(samples)) - 8000) < 50
    assert synthesizer.opened[0].request.text == "Hello there."
    assert synthesizer.opened[0].closed
    assert _metrics(session).speech_ends == ["done"]


async def test_g711_output_is_one_byte_per_8khz_sample() -> None:
    session, reader = await _session(FakeSynthesizer(chunks=2, chunk_s=0.25))
    await session.configure({"output_audio_format": "g711_ulaw"})
    assert session.config.output_rate == 8_000
    await session.speak({"text": "Hi."})
    started = await reader.until(SpeakingStarted)
    assert (started.sample_rate, started.format) == (8_000, "g711_ulaw")
    await reader.until(SpeakingEnded)
    audio = b"".join(e.audio for e in reader.of(OutputAudio))
    assert len(audio) == 4_000  # 0.5 s
    assert abs(int(np.median(ulaw_to_pcm16(audio))) - 8000) < 300


async def test_replies_are_spoken_in_order() -> None:
    session, reader = await _session(FakeSynthesizer())
    await session.speak({"text": "First.", "request_id": "a"})
    await session.speak({"text": "Second.", "request_id": "b"})
    await reader.until(SpeakingEnded, "b")
    marks = [
        (type(e).__name__, e.request_id)
        for e in reader.seen
        if isinstance(e, SpeakingStarted | SpeakingEnded)
    ]
    assert marks == [
        ("SpeakingStarted", "a"),
        ("SpeakingEnded", "a"),
        ("SpeakingStarted", "b"),
        ("SpeakingEnded", "b"),
    ]
    audio_ids = [e.request_id for e in reader.of(OutputAudio)]
    assert audio_ids == sorted(audio_ids)  # every "a" chunk before any "b" chunk


async def test_cancel_ends_the_reply_at_once_and_nothing_of_it_follows() -> None:
    synthesizer = FakeSynthesizer(chunks=10, auto=False)
    session, reader = await _session(synthesizer)
    await session.speak({"text": "A long answer.", "request_id": "long"})
    await session.speak({"text": "Next.", "request_id": "next"})
    await reader.until(OutputAudio)
    synthesizer.opened[0].release(2)
    await reader.until(OutputAudio)
    session.cancel_speech("long")
    synthesizer.opened[0].release(8)  # whatever the engine still makes is not sent
    ended = await reader.until(SpeakingEnded, "long")
    assert (ended.reason, ended.duration_ms) == ("cancelled", 1000)
    # The queued reply goes on after it.
    await reader.until(SpeakingStarted, "next")
    after = reader.seen[reader.seen.index(ended) + 1 :]
    assert all(_id(e) != "long" for e in after)
    assert synthesizer.opened[0].closed


async def test_cancel_all_ends_queued_replies_too_and_an_unknown_id_is_refused() -> None:
    synthesizer = FakeSynthesizer(chunks=10, auto=False)
    session, reader = await _session(synthesizer)
    await session.speak({"text": "One.", "request_id": "a"})
    await session.speak({"text": "Two.", "request_id": "b"})
    await reader.until(OutputAudio)
    with pytest.raises(InvalidRequestError) as refused:
        session.cancel_speech("nope")
    assert refused.value.param == "request_id"
    session.cancel_speech()
    await reader.until(SpeakingEnded, "b")
    ends = [(e.request_id, e.reason) for e in reader.of(SpeakingEnded)]
    assert ends == [("a", "cancelled"), ("b", "cancelled")]
    assert len(synthesizer.opened) == 1  # "b" was never synthesized


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 10_000}, "text"),
        ({"text": "bell \x07"}, "text"),
        ({"text": "Hi.", "speed": 9.0}, "speed"),
        ({"text": "Hi.", "speed": 3.0}, "speed"),  # valid for the API, not for this model
        ({"text": "Hi.", "voice": "nobody"}, "voice"),
        ({"text": "Hi.", "model": "no-such-model"}, "model"),
        ({"text": "Hi.", "model": "fake-stt"}, "model"),
        ({"text": "Hi.", "request_id": 7}, "request_id"),
        ({"text": "Hi.", "pitch": 2}, "pitch"),
    ],
)
async def test_bad_speak_requests_are_refused_naming_the_field(
    fields: dict[str, object], param: str
) -> None:
    synthesizer = FakeSynthesizer()
    session, _ = await _session(synthesizer)
    with pytest.raises(InvalidRequestError) as refused:
        await session.speak(fields)
    assert refused.value.param == param
    assert synthesizer.opened == []
    assert session.accepting


async def test_a_reply_the_engine_refuses_ends_with_an_error_and_the_session_goes_on() -> None:
    session, reader = await _session(FakeSynthesizer())
    await session.speak({"text": "Olá.", "language": "xx", "request_id": "bad"})
    error = await reader.until(ErrorEvent)
    assert (error.code, error.param) == (ErrorCode.INVALID_VALUE, "language")
    assert error.request_id == "bad"
    assert error.recoverable
    ended = await reader.until(SpeakingEnded)
    assert (ended.request_id, ended.reason, ended.duration_ms) == ("bad", "error", 0)
    assert not reader.of(SpeakingStarted)
    await session.speak({"text": "Fine.", "request_id": "ok"})
    assert (await reader.until(SpeakingEnded, "ok")).reason == "done"


async def test_a_session_without_tts_refuses_to_speak() -> None:
    session = RealtimeSession("s", fake_context(FakeScheduler(ScriptedStream())), SessionConfig())
    await session.start()
    with pytest.raises(InvalidRequestError) as refused:
        await session.speak({"text": "Hi."})
    assert refused.value.param == "model"
    with pytest.raises(InvalidRequestError) as refused:
        await session.configure({"tts_model": "fake-tts"})
    assert refused.value.param == "tts_model"


async def test_tts_model_setting_is_checked_and_used() -> None:
    synthesizer = FakeSynthesizer()
    session, reader = await _session(synthesizer)
    with pytest.raises(InvalidRequestError) as refused:
        await session.configure({"tts_model": "fake-stt"})
    assert refused.value.param == "tts_model"
    await session.configure({"tts_model": "fake-tts"})
    await session.speak({"text": "Hi."})
    assert (await reader.until(SpeakingStarted)).model == "fake-tts"


async def test_closing_cancels_speech_before_the_session_closes() -> None:
    session, reader = await _session(FakeSynthesizer(chunks=10, auto=False))
    await session.speak({"text": "Long.", "request_id": "a"})
    await reader.until(OutputAudio)
    await session.close()
    ended = await reader.until(SpeakingEnded)
    assert ended.reason == "cancelled"
    await reader.until(SessionClosed)
    await session.abort()


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _speaker(
    config: SessionConfig, synthesizer: FakeSynthesizer
) -> tuple[Speaker, _Clock, AsyncIterator[SessionEvent]]:
    clock = _Clock()
    events = EventStream()
    speaker = Speaker("s", synthesizer, events, RecordingMetrics(), lambda: config, clock)
    return speaker, clock, aiter(events)


async def _next(events: AsyncIterator[SessionEvent], kind: type[E]) -> E:
    async with asyncio.timeout(5):
        async for event in events:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"no {kind.__name__}")


async def test_mute_lasts_until_the_audio_sent_has_played_plus_the_tail() -> None:
    config = SessionConfig(tts_mute_tail_ms=200)
    speaker, clock, events = _speaker(config, FakeSynthesizer(chunks=4))
    assert not speaker.muted()
    await speaker.speak(SpeakRequest.parse({"text": "Two seconds."}))
    await _next(events, SpeakingEnded)  # all 2 s were sent at once, at t=100
    assert speaker.muted()
    clock.now = 102.15  # played, but within the tail
    assert speaker.muted()
    clock.now = 102.25
    assert not speaker.muted()


async def test_replies_play_back_to_back_and_cancel_unmutes_at_once() -> None:
    synthesizer = FakeSynthesizer(chunks=2)
    speaker, clock, events = _speaker(SessionConfig(), synthesizer)
    await speaker.speak(SpeakRequest.parse({"text": "One."}))
    await _next(events, SpeakingEnded)
    clock.now = 100.5  # the first reply (1 s) still plays; the second queues behind it
    await speaker.speak(SpeakRequest.parse({"text": "Two."}))
    await _next(events, SpeakingEnded)
    clock.now = 102.1
    assert speaker.muted()  # 100 + 1 s + 1 s + 0.2 s tail
    slow = FakeSynthesizer(chunks=5, auto=False)
    speaker, clock, events = _speaker(SessionConfig(), slow)
    await speaker.speak(SpeakRequest.parse({"text": "Long.", "request_id": "x"}))
    await _next(events, OutputAudio)
    assert speaker.muted()
    speaker.cancel("x")
    assert not speaker.muted()


async def test_with_tts_mute_off_the_session_never_mutes() -> None:
    speaker, _, events = _speaker(SessionConfig(tts_mute=False), FakeSynthesizer())
    await speaker.speak(SpeakRequest.parse({"text": "Hi."}))
    await _next(events, SpeakingEnded)
    assert not speaker.muted()


async def test_speech_arriving_while_muted_is_not_transcribed_but_counted() -> None:
    synthesizer = FakeSynthesizer(chunks=40, chunk_s=0.25)  # 10 s of reply
    session, reader = await _session(synthesizer)
    await session.speak({"text": "A long reply."})
    await reader.until(SpeakingStarted)
    for _ in range(40):  # all sent at once; it plays for 10 s
        await reader.until(OutputAudio)
    frames = speech_frames()
    for frame in frames:
        await session.push(frame)
    assert not reader.of(SpeechStart)
    assert _metrics(session).muted_s == pytest.approx(sum(map(len, frames)) / 32_000)
    session.cancel_speech()  # stops what still plays, and unmutes
    for frame in frames:
        await session.push(frame)
    final = await reader.until(TranscriptFinal)
    assert final.text


async def test_a_reply_right_after_a_final_measures_voice_to_voice() -> None:
    session, reader = await _session(FakeSynthesizer())
    for frame in speech_frames():
        await session.push(frame)
    await reader.until(TranscriptFinal)
    await session.speak({"text": "Answer."})
    await reader.until(SpeakingEnded)
    (v2v,) = _metrics(session).v2v
    # Pushed faster than real time: the final's words were "heard" a moment ago.
    assert 0.0 <= v2v < 3.0
    await session.speak({"text": "Again."})  # no new final: not an answer
    await reader.until(SpeakingEnded)
    assert len(_metrics(session).v2v) == 1


def test_speak_request_defaults() -> None:
    request = SpeakRequest.parse({"text": "Hi."})
    assert request.request_id.startswith("tts_")
    assert (request.model, request.voice, request.language, request.speed) == (None, "", "", 1.0)
    assert SpeakRequest.parse({"text": "Hi.", "speed": 1}).speed == 1.0


async def test_barge_in_ends_the_reply_playing_and_those_queued() -> None:
    stopped: list[bool] = []
    sent: list[OutputAudio] = []
    config = SessionConfig(barge_in=True)
    events = EventStream()
    speaker = Speaker(
        "s",
        FakeSynthesizer(chunks=4),
        events,
        RecordingMetrics(),
        lambda: config,
        _Clock(),
        on_audio=sent.append,
        on_stopped=lambda: stopped.append(True),
    )
    stream = aiter(events)
    await speaker.speak(SpeakRequest.parse({"text": "One.", "request_id": "a"}))
    await speaker.speak(SpeakRequest.parse({"text": "Two.", "request_id": "b"}))
    first = await _next(stream, OutputAudio)
    assert sent[0] is first  # the echo reference sees exactly what is sent
    assert speaker.playing() and not speaker.muted()  # barge-in: it listens while speaking
    speaker.barge_in()
    ends = [await _next(stream, SpeakingEnded) for _ in range(2)]
    assert [(e.request_id, e.reason) for e in ends] == [
        ("a", SpeakingEndReason.BARGE_IN),
        ("b", SpeakingEndReason.BARGE_IN),
    ]
    assert stopped == [True]
    assert not speaker.speaking and not speaker.playing()


async def test_a_reply_sent_but_still_playing_can_be_cancelled() -> None:
    speaker, _, events = _speaker(SessionConfig(), FakeSynthesizer(chunks=4))
    await speaker.speak(SpeakRequest.parse({"text": "Two seconds.", "request_id": "p"}))
    for _ in range(4):
        await _next(events, OutputAudio)  # all sent at once; it plays for 2 s
    await asyncio.sleep(0.05)
    assert speaker.speaking  # speaking lasts until the audio has played
    speaker.cancel("p")
    end = await _next(events, SpeakingEnded)
    assert (end.request_id, end.reason, end.duration_ms) == (
        "p",
        SpeakingEndReason.CANCELLED,
        2000,
    )
