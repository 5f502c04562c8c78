"""The session core driven directly: real speech pushed in, typed events asserted in order.

The worker is the scripted in-memory stream of ``fakes``; the VAD, segmenter, ring
buffer, worker link and outbox are the real ones. No JSON anywhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator
from typing import TypeVar

import pytest

from tests.helpers.audio import continuous_speech
from tests.helpers.server import FIXTURES
from tests.unit.session.fakes import (
    BYTES_PER_SECOND,
    SCRIPT,
    FakeScheduler,
    RecordingMetrics,
    ScriptedStream,
    fake_context,
    heard,
    speech_frames,
)
from theo.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    ModelUnavailableError,
    WorkerCrashError,
)
from theo.manifest import PreprocessingConfig
from theo.session import errors
from theo.session.audio_format import AudioEncoding, InputFormat
from theo.session.config import PreprocessingOverrides, SessionConfig
from theo.session.core import RealtimeSession
from theo.session.errors import ClientError, ErrorCode, SessionClosedError, SessionLimitError
from theo.session.events import (
    CloseReason,
    ErrorEvent,
    FinalWord,
    FramesDropped,
    InputCleared,
    RateLimit,
    SegmentEnded,
    SessionClosed,
    SessionCreated,
    SessionEvent,
    SessionHold,
    SessionLagging,
    SessionUpdated,
    SpeechEnd,
    SpeechStart,
    TranscriptFinal,
    TranscriptPartial,
)
from theo.session.state import SessionState
from theo.session.transcripts import TranscriptEvents
from theo.session.worker_link import SessionFailedError
from theo.types import StreamTranscript

E = TypeVar("E", bound=SessionEvent)


class Events:
    """A consumer of a session's events, read under a deadline."""

    def __init__(self, session: RealtimeSession) -> None:
        self._events: AsyncIterator[SessionEvent] = aiter(session)
        self.seen: list[SessionEvent] = []

    async def until(self, kind: type[E]) -> E:
        """Read until an event of ``kind`` arrives (at most 5 s); returns it."""
        async with asyncio.timeout(5):
            async for event in self._events:
                self.seen.append(event)
                if isinstance(event, kind):
                    return event
        raise AssertionError(f"the stream ended without {kind.__name__}: {self.seen}")

    async def to_end(self) -> None:
        """Read until the stream ends (at most 5 s)."""
        async with asyncio.timeout(5):
            self.seen.extend([event async for event in self._events])

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.seen if isinstance(e, kind)]

    def kinds(self) -> list[type]:
        """Event types in order, runs of partials collapsed into one."""
        kinds: list[type] = []
        for event in self.seen:
            if not (kinds and kinds[-1] is TranscriptPartial is type(event)):
                kinds.append(type(event))
        return kinds


async def _started(
    scheduler: FakeScheduler, config: SessionConfig | None = None, **limits: float
) -> tuple[RealtimeSession, Events]:
    session = RealtimeSession(
        "sess_1", fake_context(scheduler, **limits), config or SessionConfig()
    )
    events = Events(session)
    await session.start()
    return session, events


async def _speak(session: RealtimeSession, frames: list[bytes] | None = None) -> None:
    for frame in frames if frames is not None else speech_frames():
        await session.push(frame)


async def _close(session: RealtimeSession, events: Events) -> None:
    await session.close()
    await events.until(SessionClosed)
    await session.abort()  # the client leaves instead of waiting out CLOSING
    await events.to_end()


def _assert_append_only(partials: list[TranscriptPartial], final: TranscriptFinal) -> None:
    texts = [p.text for p in partials]
    assert texts, "no partial"
    for earlier, later in itertools.pairwise(texts):
        assert later.startswith(earlier) and len(later) > len(earlier), texts
    assert final.text.startswith(texts[-1])


async def test_an_utterance_gives_ordered_events_with_one_segment_id() -> None:
    session, events = await _started(FakeScheduler())
    await _speak(session)
    await events.until(SpeechEnd)
    await _close(session, events)

    assert events.kinds() == [
        SessionCreated,
        SpeechStart,
        TranscriptPartial,
        SegmentEnded,
        TranscriptFinal,
        SpeechEnd,
        SessionClosed,
    ]
    assert events.seen[0] == SessionCreated("sess_1", "fake-stt", SessionConfig())
    assert events.seen[-1] == SessionClosed("sess_1", CloseReason.CLIENT_CLOSE)
    [start], [final], [end] = (
        events.of(SpeechStart),
        events.of(TranscriptFinal),
        events.of(SpeechEnd),
    )
    partials = events.of(TranscriptPartial)
    assert {start.segment_id, final.segment_id, end.segment_id} == {1}
    assert {p.segment_id for p in partials} == {1}
    words = final.text.split()
    assert len(words) >= 6 and words == SCRIPT[: len(words)]
    _assert_append_only(partials, final)
    # Session times: the final's audio starts with the pre-roll, before the VAD's onset.
    assert final.start_ms <= start.timestamp_ms < end.timestamp_ms <= final.end_ms + 1000
    assert final.words[0] == FinalWord("alpha", final.start_ms, final.start_ms + 333, 0.9)
    assert (final.language, final.confidence) == ("en", 0.9)
    assert session.state == SessionState.CLOSED


async def test_a_session_nobody_consumes_still_times_out_and_keeps_its_events() -> None:
    scheduler = FakeScheduler()
    config = SessionConfig.model_construct(init_timeout_ms=50)  # below the client minimum
    session = RealtimeSession("sess_1", fake_context(scheduler), config)
    await session.start()
    async with asyncio.timeout(5):
        await session.wait_closed()
    assert [event async for event in session] == [
        SessionCreated("sess_1", "fake-stt", config),
        SessionClosed("sess_1", CloseReason.INIT_TIMEOUT),
    ]
    assert scheduler.opened[0].closed


async def test_silence_puts_the_session_on_hold_and_the_hold_timeout_closes_it() -> None:
    config = SessionConfig.model_construct(
        silence_timeout_ms=300, hold_timeout_ms=100, closing_timeout_ms=100
    )
    session, events = await _started(FakeScheduler(), config)
    await _speak(session)
    await events.to_end()  # nobody closes: the session's own timers end it

    assert events.kinds()[-4:] == [TranscriptFinal, SpeechEnd, SessionHold, SessionClosed]
    [hold], [end] = events.of(SessionHold), events.of(SpeechEnd)
    assert hold.session_id == "sess_1" and hold.hold_timeout_ms == 100
    assert hold.timestamp_ms > end.timestamp_ms
    assert events.seen[-1] == SessionClosed("sess_1", CloseReason.HOLD_TIMEOUT)
    assert session.state == SessionState.CLOSED


async def test_a_worker_crash_is_reported_and_nothing_is_lost() -> None:
    scheduler = FakeScheduler(ScriptedStream(crash_after_bytes=BYTES_PER_SECOND))
    session, events = await _started(scheduler)
    await _speak(session)
    await events.until(SpeechEnd)
    await _close(session, events)

    assert events.of(ErrorEvent) == [errors.worker_crashed(1)]
    crash = events.of(ErrorEvent)[0]
    assert (crash.code, crash.recoverable, crash.resume_segment_id) == ("worker_crashed", True, 1)
    [final] = events.of(TranscriptFinal)
    replacement = scheduler.opened[1]
    # The new worker got the whole segment: what the dead one had, then the rest.
    assert replacement.received[1] > BYTES_PER_SECOND
    assert final.text.split() == heard(replacement.received[1])
    _assert_append_only(events.of(TranscriptPartial), final)
    metrics = session.context.metrics
    assert isinstance(metrics, RecordingMetrics) and metrics.recoveries == ["recovered"]


async def test_a_worker_that_does_not_come_back_fails_the_session() -> None:
    scheduler = FakeScheduler(ScriptedStream(crash_after_bytes=BYTES_PER_SECOND))
    scheduler.come_back = False
    session, events = await _started(scheduler)
    await _speak(session)  # audio after the failure is ignored
    await events.to_end()

    codes = [(e.code, e.recoverable) for e in events.of(ErrorEvent)]
    assert codes == [("worker_crashed", True), ("worker_unavailable", False)]
    assert events.kinds()[-2:] == [ErrorEvent, SessionClosed]
    assert events.seen[-1] == SessionClosed("sess_1", CloseReason.ERROR)
    assert isinstance(session.failure, SessionFailedError)
    assert session.state == SessionState.CLOSED


async def test_a_setting_the_engine_refuses_is_set_back_and_the_speech_resent() -> None:
    scheduler = FakeScheduler(ScriptedStream(refuse_language="zz"))
    session, events = await _started(scheduler, SessionConfig(language="zz"))
    await _speak(session)
    await events.until(SpeechEnd)
    await _close(session, events)

    assert events.of(ErrorEvent) == [
        ErrorEvent(
            "invalid_value",
            "The model refused a session setting: Unsupported language 'zz'. "
            "'language' is set back to null; the speech is transcribed with it.",
            recoverable=True,
            param="language",
        )
    ]
    assert session.config.language is None
    [final] = events.of(TranscriptFinal)
    assert final.language == "en"
    assert final.text.split() == heard(scheduler.opened[1].received[1])


async def test_configure_answers_with_the_config_and_refused_input_becomes_error_events() -> None:
    session, events = await _started(FakeScheduler())
    await session.configure({"language": "en", "vad_sensitivity": "high"})
    with pytest.raises(InvalidRequestError) as bad_setting:
        await session.configure({"input_sample_rate": 4000})
    with pytest.raises(InvalidRequestError) as odd_frame:
        await session.push(b"\x00\x01\x02")
    refused = [
        session.report(bad_setting.value),
        session.report(odd_frame.value),
        session.report(ClientError("unknown_command", "Unknown command 'x'.")),
        session.report(SessionClosedError()),
        session.report(WorkerCrashError("The worker died.")),
    ]
    await _close(session, events)

    [updated] = events.of(SessionUpdated)
    assert updated.config == session.config and updated.config.language == "en"
    assert updated.config.vad_sensitivity == "high"
    assert events.of(ErrorEvent) == refused
    assert [(e.code, e.param, e.recoverable) for e in refused] == [
        ("invalid_value", "input_sample_rate", True),
        ("invalid_value", "audio", True),
        ("unknown_command", None, True),
        ("session_closed", None, False),
        ("worker_unavailable", None, False),
    ]
    assert [errors.is_fatal(e) for e in refused] == [False, False, False, False, True]
    assert events.kinds()[:3] == [SessionCreated, SessionUpdated, ErrorEvent]


async def test_cancel_discards_the_open_segment() -> None:
    scheduler = FakeScheduler()
    session, events = await _started(scheduler)
    await _speak(session, speech_frames()[:100])  # 2 s: mid-utterance
    await events.until(SpeechStart)
    await session.cancel()
    await events.until(SessionClosed)
    await session.abort()
    await events.to_end()

    assert events.seen[-1] == SessionClosed("sess_1", CloseReason.CANCELLED)
    assert not events.of(TranscriptFinal) and not events.of(SpeechEnd)
    assert scheduler.opened[0].closed
    assert not session.accepting


async def test_a_segment_end_is_announced_before_its_final_with_its_audio() -> None:
    session, events = await _started(FakeScheduler())
    await _speak(session)
    await events.until(SpeechEnd)
    await _close(session, events)

    [start], [ended], [final], [end] = (
        events.of(SpeechStart),
        events.of(SegmentEnded),
        events.of(TranscriptFinal),
        events.of(SpeechEnd),
    )
    assert events.seen.index(ended) < events.seen.index(final)
    assert ended.by_vad and ended.timestamp_ms == end.timestamp_ms
    # The segment's audio runs from the pre-roll to the VAD's silence wait.
    assert ended.audio_ms >= end.timestamp_ms - start.timestamp_ms


async def test_manual_turns_open_a_segment_on_audio_and_end_it_only_on_commit() -> None:
    scheduler = FakeScheduler()
    config = SessionConfig(turn_detection="manual")
    session, events = await _started(scheduler, config)
    silence = bytes(640)  # 20 ms: no speech, yet the buffer takes it
    for _ in range(50):
        await session.push(silence)
    await events.until(SpeechStart)
    assert session.uncommitted_ms == 1000
    await _speak(session)  # speech and 1 s of silence: the VAD ends nothing
    assert not events.of(SegmentEnded)
    await session.commit()
    final = await events.until(TranscriptFinal)
    await _close(session, events)

    [start] = events.of(SpeechStart)
    [ended] = events.of(SegmentEnded)
    assert (start.segment_id, start.timestamp_ms) == (1, 0)
    assert not ended.by_vad and ended.audio_ms == ended.timestamp_ms
    assert final.segment_id == 1 and final.text.split()[:2] == SCRIPT[:2]
    assert not events.of(SpeechEnd)
    assert session.uncommitted_ms == 0


async def test_clear_discards_the_open_segment_and_the_session_goes_on() -> None:
    session, events = await _started(FakeScheduler())
    await session.clear()  # nothing open
    assert await events.until(InputCleared) == InputCleared(None)
    await _speak(session, speech_frames()[:100])  # 2 s: mid-utterance
    await events.until(SpeechStart)
    await session.clear()
    assert await events.until(InputCleared) == InputCleared(1)
    await _speak(session)
    await events.until(SpeechEnd)
    await _close(session, events)

    assert [f.segment_id for f in events.of(TranscriptFinal)] == [2]
    assert [e.segment_id for e in events.of(SegmentEnded)] == [2]
    cleared = events.seen.index(InputCleared(1))
    assert all(
        not isinstance(e, TranscriptPartial) or e.segment_id == 2 for e in events.seen[cleared:]
    )


async def test_the_session_prompt_and_vad_settings_reach_the_worker_and_the_vad() -> None:
    scheduler = FakeScheduler()
    # Without dictation the VAD's own wait is vad_silence_ms (with it, the dictation window).
    config = SessionConfig(
        prompt="PIX e TED", vad_silence_ms=600, vad_threshold=0.7, dictation=False
    )
    session, events = await _started(scheduler, config)
    await _speak(session)
    await events.until(SpeechEnd)
    await _close(session, events)

    assert {a.prompt for a in scheduler.opened[0].sent} == {"PIX e TED"}
    vad = session._speech._segmenter.vad
    assert vad._silence_windows == 19  # 600 ms of 32 ms windows
    assert vad._prefilter.thresholds.speech_prob == 0.7
    assert vad._prefilter.thresholds.keep_prob == pytest.approx(0.55)


async def test_audio_faster_than_real_time_is_limited_then_dropped() -> None:
    session, events = await _started(FakeScheduler(), rate_limit_after_s=0.5, max_backlog_s=1.0)
    await _speak(session, [bytes(640)] * 100)  # 2 s of silence at once
    await _close(session, events)

    rate_limits, drops = events.of(RateLimit), events.of(FramesDropped)
    assert rate_limits and rate_limits[0].delay_ms > 500
    assert rate_limits[0].message == "Audio is arriving faster than real time; pause for delay_ms."
    assert drops and sum(d.dropped_ms for d in drops) == drops[-1].total_dropped_ms > 0
    assert events.seen.index(rate_limits[0]) < events.seen.index(drops[0])
    assert events.kinds()[-2:] == [FramesDropped, SessionClosed]  # the last drops, flushed


async def test_audio_paced_by_its_source_is_never_limited_as_too_fast() -> None:
    """A phone line's burst after a stall is not a client sending too fast."""
    scheduler = FakeScheduler()
    session = RealtimeSession(
        "call_1",
        fake_context(scheduler, rate_limit_after_s=0.5, max_backlog_s=1.0),
        SessionConfig(),
        paced_by_source=True,
    )
    events = Events(session)
    await session.start()
    await _speak(session, [bytes(640)] * 100)  # 2 s of silence at once
    await _close(session, events)

    assert not events.of(RateLimit)
    assert not events.of(FramesDropped)
    assert events.kinds()[-1] is SessionClosed


def test_the_input_format_checks_and_times_frames() -> None:
    telephone = InputFormat(AudioEncoding.PCM16, 8000)
    assert telephone.bytes_per_sample == 2
    assert telephone.duration_s(bytes(16_000)) == 1.0
    assert telephone.decode(b"\x00\x40").tolist() == [0.5]
    with pytest.raises(InvalidRequestError) as info:
        telephone.check(b"\x00")
    assert info.value.param == "audio"


def test_refusals_before_a_session_are_never_recoverable() -> None:
    cases = [
        (SessionLimitError("full"), ErrorCode.TOO_MANY_SESSIONS, None),
        (ModelNotFoundError("x", ["a"]), ErrorCode.MODEL_NOT_FOUND, None),
        (ModelUnavailableError("loading"), ErrorCode.MODEL_UNAVAILABLE, None),
        (InvalidRequestError("no", param="language"), ErrorCode.INVALID_VALUE, "language"),
    ]
    for error, code, param in cases:
        event = errors.refusal(error)
        assert (event.code, event.param, event.recoverable) == (code, param, False)
        assert event.message == error.message


async def test_a_final_overdue_by_the_lag_warning_is_reported_once_and_still_comes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Slow post-processing: frames keep arriving while the late final is being formatted,
    # which once reported the same segment overdue a second time.
    postprocess = TranscriptEvents._postprocess

    def slow_postprocess(self: TranscriptEvents, transcript: StreamTranscript) -> str:
        time.sleep(0.15)
        return postprocess(self, transcript)

    monkeypatch.setattr(TranscriptEvents, "_postprocess", slow_postprocess)
    session, events = await _started(
        FakeScheduler(ScriptedStream(final_delay_s=0.6)), lag_warning_s=0.2
    )
    await _speak(session)
    await events.until(SegmentEnded)
    for _ in range(40):  # the client keeps streaming silence while the final is late
        await session.push(bytes(640))
        await asyncio.sleep(0.02)
    await events.until(TranscriptFinal)
    await _close(session, events)

    [lagging] = events.of(SessionLagging)
    assert lagging.segment_id == 1 and 200 <= lagging.lag_ms < 600, lagging
    assert "falling behind real time" in lagging.message
    kinds = events.kinds()
    assert kinds.index(SegmentEnded) < kinds.index(SessionLagging) < kinds.index(TranscriptFinal)
    assert session.context.metrics.lagging == 1  # type: ignore[attr-defined]


async def test_a_ring_filled_by_a_late_final_does_not_chop_the_speech_that_follows() -> None:
    # An 8 s ring cuts an open segment at 4 s (6 s of headroom, never before half). While
    # that final is late, its audio stays in the ring: cutting the next segment would free
    # nothing, only chop the speech, so the ring fills and the excess is reported dropped.
    session, events = await _started(
        FakeScheduler(ScriptedStream(final_delay_s=30)), ring_buffer_s=8
    )
    audio = continuous_speech(FIXTURES / "en_librivox.wav")[: 9 * BYTES_PER_SECOND]
    await _speak(session, [audio[i : i + 640] for i in range(0, len(audio), 640)])
    first = await events.until(SegmentEnded)
    dropped = await events.until(FramesDropped)
    await session.abort()

    assert not first.by_vad and 3_900 <= first.audio_ms <= 4_300, first
    assert session.context.metrics.force_commits == ["ring_buffer"]  # type: ignore[attr-defined]
    assert len(events.of(SegmentEnded)) == 1
    assert "waiting for its final" in dropped.message


@pytest.mark.parametrize("unstable", [False, True])
async def test_unstable_words_reach_only_the_clients_that_ask_for_them(unstable: bool) -> None:
    config = SessionConfig(unstable_partials=unstable)
    session, events = await _started(FakeScheduler(), config)
    await _speak(session)
    await events.until(SpeechEnd)
    await _close(session, events)

    partials = events.of(TranscriptPartial)
    if not unstable:  # exactly as before: agreed words only, each partial longer
        assert all(p.unstable_text is None for p in partials)
        _assert_append_only(partials, events.of(TranscriptFinal)[0])
        return
    # The first pass's guess comes before any word is agreed, then each agreed word
    # with the next guess; the agreed text stays append-only.
    assert (partials[0].text, partials[0].unstable_text) == ("", "alpha")
    assert (partials[1].text, partials[1].unstable_text) == ("alpha", "bravo")
    _assert_append_only(partials[1:], events.of(TranscriptFinal)[0])


@pytest.mark.parametrize(
    ("rate", "overrides", "gain"),
    [
        (8_000, PreprocessingOverrides(), False),  # the model's narrowband default
        (8_000, PreprocessingOverrides(gain_normalize=True), True),  # the client's choice
        (16_000, PreprocessingOverrides(), True),  # wideband: the model's general default
    ],
)
async def test_telephone_band_input_takes_the_models_narrowband_stages(
    rate: int, overrides: PreprocessingOverrides, gain: bool
) -> None:
    scheduler = FakeScheduler()
    context = fake_context(scheduler)
    context = dataclasses.replace(
        context,
        manifest=context.manifest.model_copy(
            update={"preprocessing": PreprocessingConfig(narrowband_gain_normalize=False)}
        ),
    )
    config = SessionConfig(input_sample_rate=rate, preprocessing=overrides)
    session = RealtimeSession("sess_1", context, config)
    events = Events(session)
    await session.start()
    chain = session._speech._segmenter.chain
    await _close(session, events)

    assert (chain._gain is not None) is gain
