"""Dictation-aware endpointing: which words stop inside an entity, and the session waiting
longer before it ends such a segment."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.session import fakes
from tests.unit.session.fakes import FakeScheduler, RecordingMetrics, fake_context, speech_frames
from theo.session.config import SessionConfig
from theo.session.core import RealtimeSession
from theo.session.dictation import ends_inside_entity
from theo.session.events import SessionEvent, SpeechEnd, TranscriptFinal

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
    monkeypatch.setattr(fakes, "SCRIPT", ["meu", "cpf", "é", "um", "dois", "três", "quatro"] * 2)
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
