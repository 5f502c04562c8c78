"""Dictation-aware endpointing: which words stop inside an entity, and the session waiting
longer before it ends such a segment."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.session import fakes
from tests.unit.session.fakes import (
    FakeScheduler,
    RecordingMetrics,
    ScriptedStream,
    fake_context,
    speech_frames,
)
from theo.session import speech as speech_module
from theo.session.config import SessionConfig
from theo.session.core import RealtimeSession
from theo.session.dictation import ends_inside_entity
from theo.session.events import (
    SessionEvent,
    SpeechEnd,
    TranscriptCorrection,
    TranscriptFinal,
)
from theo.session.outbox import OrderedOutbox
from theo.session.transcripts import TranscriptEvents
from theo.types import StreamTranscript, TranscriptKind

SILENCE_20MS = bytes(640)


@pytest.mark.parametrize(
    "text",
    [
        "Meu CPF é",
        "Meu CPF é um, dois, três,",
        "Meu CPF é 1, 2, 3.",
        "O telefone é 11 9 8 7",
        "Mil e duzentos reais",
        "Número do cartão",
        "my phone number is",
        "four five six",
        "It costs twenty dollars",
        "O valor é",
    ],
)
def test_words_stopping_inside_an_entity(text: str) -> None:
    assert ends_inside_entity(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "He was not an ill disposed young man.",
        "Eu fui ao mercado e",
        "Obrigado, até logo.",
        "That is",
        "O CPF dele está correto.",
    ],
)
def test_ordinary_words(text: str) -> None:
    assert not ends_inside_entity(text)


async def _speech_end_after(
    config: SessionConfig, monkeypatch: pytest.MonkeyPatch, extra_silence_s: float
) -> tuple[list[SessionEvent], RecordingMetrics]:
    """Push speech whose partials dictate digits, 1 s of silence, then ``extra_silence_s``."""
    digits = ["um", "dois", "três", "quatro", "cinco", "seis", "sete", "oito", "nove", "zero"]
    monkeypatch.setattr(fakes, "SCRIPT", ["meu", "cpf", "é", *digits * 2])
    context = fake_context(FakeScheduler())
    session = RealtimeSession("sess_1", context, config)
    seen: list[SessionEvent] = []

    async def read() -> None:
        async for event in session:
            seen.append(event)

    reader = asyncio.create_task(read())
    await session.start()
    for frame in speech_frames():
        await session.push(frame)
        await asyncio.sleep(0)  # let partials arrive as they would in real time
    for _ in range(round(extra_silence_s / 0.02)):
        await session.push(SILENCE_20MS)
        await asyncio.sleep(0)
    await asyncio.sleep(0.1)
    await session.abort()
    await reader
    metrics = context.metrics
    assert isinstance(metrics, RecordingMetrics)
    return seen, metrics


async def test_a_segment_ending_in_digits_waits_the_dictation_silence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen, metrics = await _speech_end_after(SessionConfig(), monkeypatch, 0.0)
    assert not [e for e in seen if isinstance(e, SpeechEnd)]  # 1 s is a pause in dictation

    seen, metrics = await _speech_end_after(SessionConfig(), monkeypatch, 0.8)
    [final] = [e for e in seen if isinstance(e, TranscriptFinal)]
    assert final.text.startswith("meu cpf é um")
    assert [e for e in seen if isinstance(e, SpeechEnd)]
    assert metrics.dictation_extensions == 1


async def test_without_dictation_the_same_pause_ends_the_segment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen, metrics = await _speech_end_after(SessionConfig(dictation=False), monkeypatch, 0.0)
    assert [e for e in seen if isinstance(e, SpeechEnd)]
    assert metrics.dictation_extensions == 0


async def _finals_of(texts: list[str], gap_ms: int = 650) -> list[SessionEvent]:
    """Run raw finals, one segment each, ``gap_ms`` apart, through the transcript events."""
    sent: list[SessionEvent] = []

    async def send(event: SessionEvent) -> None:
        sent.append(event)

    config = SessionConfig(language="pt")
    events = TranscriptEvents(fake_context(FakeScheduler()), OrderedOutbox(send), lambda: config)
    start = 0
    for segment, text in enumerate(texts, start=1):
        await events.opened(segment, start * 16, start * 16)
        end = start + 1500
        await events.ended(segment, end * 16, None)
        await events.transcript(
            StreamTranscript(TranscriptKind.FINAL, segment, text, 0, 1500, "pt", 0.9)
        )
        start = end + gap_ms
    return sent


async def test_an_entity_split_over_finals_is_corrected_after_its_last_part() -> None:
    sent = await _finals_of(["Meu CPF é 1, 2, 3.", "4, 5, 6.", "7, 8, 9.", "0, 0.", "Obrigado."])
    finals = [e.text for e in sent if isinstance(e, TranscriptFinal)]
    assert len(finals) == 5  # the finals themselves stay as they were sent
    corrections = [e for e in sent if isinstance(e, TranscriptCorrection)]
    assert corrections[-1].segment_ids == (1, 2, 3, 4)
    assert "123.456.789-00" in corrections[-1].text
    # Each correction right after the final of its last segment.
    for correction in corrections:
        before = sent[sent.index(correction) - 1]
        assert isinstance(before, TranscriptFinal)
        assert before.segment_id == correction.segment_ids[-1]


async def test_unrelated_finals_get_no_correction() -> None:
    assert not [
        e
        for e in await _finals_of(["Bom dia.", "Dois filhos.", "Meu CPF é 1, 2, 3."])
        if isinstance(e, TranscriptCorrection)
    ]
    # Too far apart to be one entity.
    far = await _finals_of(["Meu CPF é 1, 2, 3.", "4, 5, 6."], gap_ms=8_000)
    assert not [e for e in far if isinstance(e, TranscriptCorrection)]


async def _paused_after_speech() -> RealtimeSession:
    """A session whose worker sends no tentative transcripts (the test does), paused
    after 1.2 s of speech until a frame would be held back for the pause's words."""
    scheduler = FakeScheduler(ScriptedStream(tentatives=False))
    session = RealtimeSession("sess_1", fake_context(scheduler), SessionConfig())
    await session.start()
    for frame in speech_frames()[:60]:  # 1.2 s of speech: a segment is open
        await session.push(frame)
        await asyncio.sleep(0)  # let partials arrive
    speech = session._speech
    assert speech._segmenter.vad._silence_windows == 47  # the VAD's own wait: 1500 ms
    for _ in range(50):
        if speech._awaiting_pause_words():
            break
        await session.push(SILENCE_20MS)
    assert 300 <= speech._segmenter.vad.quiet_ms < 400  # just past vad_silence_ms
    return session


async def _resume_speech(session: RealtimeSession, words: str | None) -> int | None:
    """Resume speaking while the pause's words are late; ``words`` come while the first
    resumed frame is held back. Returns the segment the resumed speech is in."""
    frames = speech_frames()[:40]
    held = asyncio.create_task(session.push(frames[0]))
    await asyncio.sleep(0.05)
    assert not held.done()  # held back for the pause's words
    if words is not None:
        await session._on_transcript(StreamTranscript(TranscriptKind.TENTATIVE, 1, words))
    await held
    for frame in frames[1:]:
        await session.push(frame)
    return session._speech.open_segment


async def test_speech_resumed_before_late_pause_words_starts_the_segment_they_end() -> None:
    """On a busy machine the pause's words come after the speaker resumed: the resumed
    speech still starts a new segment, as it does on an idle machine."""
    session = await _paused_after_speech()
    assert await _resume_speech(session, "meu nome é Ana.") == 2
    seen: list[SessionEvent] = []
    await session.abort()
    seen.extend([event async for event in session])
    assert [e.segment_id for e in seen if isinstance(e, SpeechEnd)][:1] == [1]
    assert not [e for e in seen if getattr(e, "text", None) == "meu nome é Ana."]  # never sent


async def test_speech_resumed_inside_a_dictated_entity_goes_on_in_its_segment() -> None:
    session = await _paused_after_speech()
    assert await _resume_speech(session, "meu CPF é um dois três") == 1
    await session.abort()


async def test_pause_words_that_never_come_leave_the_decision_to_the_latest_partial(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a machine too loaded for the words to come within the hold, utterances a
    second apart must still not run into one segment."""
    monkeypatch.setattr(speech_module, "_PAUSE_WORDS_HOLD_S", 0.2)
    session = await _paused_after_speech()
    assert await _resume_speech(session, None) == 2  # the partial's words are ordinary
    await session.abort()
