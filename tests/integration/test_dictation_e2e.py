"""Numbers dictated in groups, with pauses, through a real `theo serve` realtime session.

The speech is Kokoro's pt-BR voice, one group at a time, joined with 650 ms of silence
(the pauses callers make between groups), streamed at real-time pace into
faster-whisper-base. The English phone number is Piper's, which samples noise as it
speaks: it is the committed ``en_phone_dictation.wav`` (the same groups and pauses), so
that every run hears the same rendering. Dictation-aware endpointing keeps each entity in
one segment, so its final is formatted whole; ordinary sentences with the same pauses
still end apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest
from openai import AsyncOpenAI

from tests.conftest import BASE, KOKORO
from tests.helpers.audio import read_wav
from tests.helpers.load import cores_loaded
from tests.helpers.openai_realtime import TRANSCRIPTION, EventLog, chunks, drain, send_paced
from tests.helpers.realtime import SessionLog, run_session, ws_url
from tests.helpers.server import FIXTURES, RunningServer

RATE = 24_000  # response_format=pcm
PAUSE_S = 0.65


PT_VOICE = {"model": KOKORO, "voice": "jm_kumo", "language": "pt-br"}


def _spoken(tts_server: RunningServer, groups: list[str]) -> bytes:
    """The groups spoken one by one, ``PAUSE_S`` of silence between them."""
    pause = bytes(int(RATE * PAUSE_S) * 2)
    parts: list[bytes] = []
    with tts_server.client() as client:
        for text in groups:
            response = client.post(
                "/v1/audio/speech",
                json={**PT_VOICE, "input": text, "response_format": "pcm"},
            )
            assert response.status_code == 200, response.text
            parts.append(_trimmed(response.content))
    return pause.join(parts)


def _phone_clip() -> bytes:
    samples, rate = read_wav(FIXTURES / "en_phone_dictation.wav")
    assert rate == RATE
    return samples.astype("<i2").tobytes()


def _trimmed(pcm: bytes) -> bytes:
    """The speech without the engine's leading and trailing silence."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples) > 300)
    return samples[loud[0] : loud[-1] + 1].tobytes() if loud.size else pcm


@pytest.fixture(scope="module")
def dictation(tts_server: RunningServer) -> Iterator[dict[str, bytes]]:
    yield {
        "cpf": _spoken(
            tts_server,
            ["Meu CPF é um dois três", "quatro cinco seis", "sete oito nove", "zero zero"],
        ),
        "amount": _spoken(tts_server, ["O valor é mil e duzentos reais", "e cinquenta centavos"]),
        "ordinary": _spoken(
            tts_server, ["Bom dia, tudo bem?", "Eu gostaria de falar com o gerente."]
        ),
        "phone": _spoken(
            tts_server, ["Meu telefone é onze", "nove oito sete seis cinco", "quatro três dois um"]
        ),
        "card": _spoken(
            tts_server,
            [
                "O número do cartão é quatro, cinco, três, dois",
                "um, dois, três, quatro",
                "cinco, seis, sete, oito",
                "nove, zero, um, dois",
            ],
        ),
        # "My phone number is five five five" / "one two three" / "four five six seven"
        # (scripts/make_phone_call_clip.py --wideband).
        "en_phone": _phone_clip(),
    }


def _finals(
    server: RunningServer, audio: bytes, *, english: bool = False, **settings: object
) -> tuple[list[str], SessionLog]:
    configure = {"type": "session.configure", "input_sample_rate": RATE, **settings}
    # base for both languages: tiny.en's finals on these short groups vary more.
    url = ws_url(server.base_url, BASE, "en" if english else "pt")
    log = asyncio.run(
        run_session(
            url,
            audio,
            RATE,
            tail_silence_s=2.5,
            commands_before=[configure],
        )
    )
    assert not log.of("error"), log.of("error")
    return [f for f in log.finals() if f.strip()], log


def _assert_formatted(finals: list[str], log: SessionLog, entity: str) -> None:
    """The entity formatted in one final, or, when a pause still split it (a worker slow
    to give the words at the pause, as on a loaded machine), in the documented
    ``transcript.correction`` that follows the finals."""
    if len(finals) == 1:
        assert entity in finals[0], finals
        return
    corrections = [c["text"] for c in log.of("transcript.correction")]
    assert any(entity in text for text in corrections), (finals, corrections)


def test_a_cpf_dictated_in_groups_is_one_formatted_final(
    server: RunningServer, dictation: dict[str, bytes]
) -> None:
    _assert_formatted(*_finals(server, dictation["cpf"]), "123.456.789-00")


def test_an_amount_with_its_cents_after_a_pause_is_one_final(
    server: RunningServer, dictation: dict[str, bytes]
) -> None:
    _assert_formatted(*_finals(server, dictation["amount"]), "R$ 1.200,50")


@pytest.mark.parametrize(
    ("clip", "entity", "english"),
    [
        ("phone", "(11) 98765-4321", False),
        ("card", "4532 1234 5678 9012", False),
        ("en_phone", "555-123-4567", True),
    ],
)
def test_phones_cards_and_amounts_dictated_in_groups_are_one_final(
    server: RunningServer, dictation: dict[str, bytes], clip: str, entity: str, english: bool
) -> None:
    _assert_formatted(*_finals(server, dictation[clip], english=english), entity)


def test_a_dictation_reads_the_same_on_a_busy_machine(
    server: RunningServer, dictation: dict[str, bytes]
) -> None:
    """Each pause of a dictation is decoded up to where the VAD marked it, and that reading
    anchors the rest of the number: the anchors, like the finals, depend on the audio
    only, so the raw finals (no ITN) are the same idle and with both cores taken by
    another job. (Audio that piles up behind a slow write to the worker keeps where the
    pause began: tests/unit/session/test_uncommitted.py.)"""
    raw = {"enable_itn": False}
    idle, _ = _finals(server, dictation["en_phone"], english=True, **raw)
    with cores_loaded():
        busy, _ = _finals(server, dictation["en_phone"], english=True, **raw)
    assert busy == idle
    assert len(idle) == 1 and "555" in idle[0], idle


def test_ordinary_sentences_with_the_same_pause_stay_apart(
    server: RunningServer, dictation: dict[str, bytes]
) -> None:
    finals, _ = _finals(server, dictation["ordinary"])
    assert len(finals) == 2, finals
    assert "bom dia" in finals[0].lower() and "gerente" in finals[1].lower(), finals


def test_a_cpf_split_by_longer_pauses_gets_a_correction_event(
    server: RunningServer, dictation: dict[str, bytes]
) -> None:
    # A dictation window shorter than the pauses: the groups end apart.
    finals, log = _finals(server, dictation["cpf"], dictation_silence_ms=400)
    assert len(finals) >= 2 and "123.456.789-00" not in " ".join(finals), finals
    corrections = [c for c in log.of("transcript.correction") if "123.456.789-00" in c["text"]]
    assert corrections, (finals, log.of("transcript.correction"))
    correction = corrections[-1]
    final_ids = [e["segment_id"] for e in log.of("transcript.final") if e["text"].strip()]
    assert correction["segment_ids"] == final_ids[: len(correction["segment_ids"])]
    assert len(correction["segment_ids"]) >= 2
    # Sent after the final of its last segment.
    last = correction["segment_ids"][-1]
    final_at = next(
        i
        for i, e in enumerate(log.events)
        if e["type"] == "transcript.final" and e["segment_id"] == last
    )
    assert log.events.index(correction) > final_at


def test_the_openai_protocol_completes_the_turn_with_the_formatted_cpf(
    server: RunningServer, dictation: dict[str, bytes]
) -> None:
    log = EventLog()

    async def run() -> None:
        ws_base = server.base_url.replace("http://", "ws://") + "/v1"
        client = AsyncOpenAI(
            base_url=f"{server.base_url}/v1", websocket_base_url=ws_base, api_key="unused"
        )
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
            await conn.session.update(
                session={
                    "type": "transcription",
                    "audio": {
                        "input": {"transcription": {"model": BASE, "language": "pt"}},
                    },
                }
            )
            # Kokoro's pcm is 24 kHz PCM16: OpenAI's own input format.
            await send_paced(conn, chunks(dictation["cpf"] + bytes(RATE * 2 * 3), RATE * 2))
            async with asyncio.timeout(60):
                await drain(conn, log)

    asyncio.run(run())
    transcripts = [e["transcript"] for e in log.of(f"{TRANSCRIPTION}.completed")]
    if len(transcripts) == 1:
        assert "123.456.789-00" in transcripts[0], transcripts
    else:
        # A loaded machine can give the words at a pause too late and the turn is cut;
        # this protocol has no correction event, but no digit may be lost.
        digits = "".join(c for c in " ".join(transcripts) if c.isdigit())
        assert "12345678900" in digits, transcripts
