"""OpenAI Realtime transcription through `theo serve` with real engines and real speech,
driven by the official ``openai`` SDK as agent frameworks drive it.

LibriVox utterances (real human speech) go in as base64 appends: 24 kHz PCM16 at real-time
pace with the server's VAD ending the turns (current form), and 8 kHz mu-law with manual
commits (beta form). Assertions are on the events' order per turn, deltas arriving while
the user still speaks, deltas being the start of the completed transcript, and the words.
"""

from __future__ import annotations

import asyncio

import numpy as np
import soxr
from openai import AsyncOpenAI

from tests.conftest import BASE, TINY_EN
from tests.helpers.audio import read_wav
from tests.helpers.openai_realtime import (
    TRANSCRIPTION,
    EventLog,
    chunks,
    collect,
    drain,
    send_paced,
)
from tests.helpers.server import FIXTURES, RunningServer
from tests.helpers.wer import wer
from theo.audio.g711 import pcm16_to_ulaw

DEADLINE_S = 60.0
# The five LibriVox clips of en_librivox.wav end at these seconds (0.6 s of silence follow).
CLIP_ENDS_S = (7.1, 10.69, 16.59, 23.24, 27.13)
REFERENCE = (FIXTURES / "en_librivox.txt").read_text().split()
# Words of the first three clips in the reference.
FIRST_THREE = " ".join(REFERENCE[:44])


def _client(server: RunningServer) -> AsyncOpenAI:
    ws_base = server.base_url.replace("http://", "ws://") + "/v1"
    return AsyncOpenAI(
        base_url=f"{server.base_url}/v1", websocket_base_url=ws_base, api_key="unused"
    )


def _transcripts(log: EventLog) -> list[str]:
    return [e["transcript"] for e in log.of(f"{TRANSCRIPTION}.completed")]


def test_current_form_at_real_time_pace_streams_deltas_while_the_user_speaks(
    server: RunningServer,
) -> None:
    samples, rate = read_wav(FIXTURES / "en_librivox.wav")
    speech = samples[: int(CLIP_ENDS_S[2] * rate)].astype(np.float32) / 32768
    pcm = (soxr.resample(speech, rate, 24_000) * 32767).astype("<i2").tobytes()
    log = EventLog()

    async def run() -> None:
        connect = _client(server).realtime.connect(extra_query={"intent": "transcription"})
        async with connect as conn:
            await conn.session.update(
                session={
                    "type": "transcription",
                    "audio": {
                        "input": {
                            "format": {"type": "audio/pcm", "rate": 24000},
                            "transcription": {"model": TINY_EN, "language": "en"},
                            "turn_detection": {"type": "server_vad", "threshold": 0.5},
                        }
                    },
                }
            )
            # Events queue in the client meanwhile; their order is the server's.
            await send_paced(conn, chunks(pcm + bytes(72_000), 48_000))  # + 1.5 s silence
            async with asyncio.timeout(DEADLINE_S):
                await drain(conn, log)

    asyncio.run(run())

    types = log.types()
    assert types[:2] == ["session.created", "session.updated"], types[:5]
    assert log.events[1]["session"]["audio"]["input"]["transcription"]["model"] == TINY_EN
    assert not log.of("error"), log.of("error")
    started = [e["item_id"] for e in log.of("input_audio_buffer.speech_started")]
    assert len(started) >= 3
    previous = None
    for item_id in started:
        at = {
            kind: log.index(kind, item_id)
            for kind in (
                "input_audio_buffer.speech_started",
                "input_audio_buffer.speech_stopped",
                "input_audio_buffer.committed",
                f"{TRANSCRIPTION}.completed",
            )
        }
        assert list(at.values()) == sorted(at.values()), (item_id, at)
        committed = log.events[at["input_audio_buffer.committed"]]
        assert committed["previous_item_id"] == previous
        previous = item_id
        added = [e for e in log.of("conversation.item.added") if e["item"]["id"] == item_id]
        done = [e for e in log.of("conversation.item.done") if e["item"]["id"] == item_id]
        assert len(added) == len(done) == 1
        completed = log.events[at[f"{TRANSCRIPTION}.completed"]]
        assert done[0]["item"]["content"][0]["transcript"] == completed["transcript"]
        assert completed["usage"]["type"] == "duration" and completed["usage"]["seconds"] > 0
        deltas = [
            (i, e["delta"])
            for i, e in enumerate(log.events)
            if e["type"] == f"{TRANSCRIPTION}.delta" and e["item_id"] == item_id
        ]
        # The deltas preview the transcript: only the final may correct one of their words.
        preview = "".join(d for _, d in deltas).split()
        start = " ".join(completed["transcript"].split()[: len(preview)])
        assert not preview or wer(start, " ".join(preview)) <= 0.25, (preview, completed)
        if completed["usage"]["seconds"] > 2.0:
            # A real partial: text while the user was still speaking.
            assert deltas and deltas[0][0] < at["input_audio_buffer.speech_stopped"], item_id
    assert wer(FIRST_THREE, " ".join(_transcripts(log))) <= 0.15, _transcripts(log)


def test_beta_form_with_mulaw_and_manual_commits(server: RunningServer) -> None:
    samples, rate = read_wav(FIXTURES / "en_librivox_8k.wav")
    first = pcm16_to_ulaw(samples[: int(CLIP_ENDS_S[0] * rate)])
    second = pcm16_to_ulaw(samples[int(7.5 * rate) : int(CLIP_ENDS_S[1] * rate)])
    log = EventLog()

    async def run() -> None:
        async with _client(server).beta.realtime.connect(model=TINY_EN) as conn:
            await conn.send(
                {
                    "type": "transcription_session.update",
                    "session": {
                        "input_audio_format": "g711_ulaw",
                        "input_audio_transcription": {"model": "gpt-4o-transcribe"},
                        "turn_detection": None,
                    },
                }
            )
            for turn in (first, second):
                for audio in chunks(turn, 8_000, seconds=0.5):
                    await conn.input_audio_buffer.append(audio=audio)
                await conn.input_audio_buffer.commit()
            async with asyncio.timeout(DEADLINE_S):
                await collect(conn, log, f"{TRANSCRIPTION}.completed", count=2)

    asyncio.run(run())

    assert log.types()[:2] == ["transcription_session.created", "transcription_session.updated"]
    session = log.events[1]["session"]
    assert session["input_audio_format"] == "g711_ulaw" and session["turn_detection"] is None
    assert session["input_audio_transcription"]["model"] == TINY_EN  # the model query names it
    assert not log.of("input_audio_buffer.speech_started")
    first_id, second_id = (e["item_id"] for e in log.of("input_audio_buffer.committed"))
    assert [e["item"]["id"] for e in log.of("conversation.item.created")] == [first_id, second_id]
    one, two = _transcripts(log)
    assert "dashwood" in one.lower(), one
    assert "young man" in two.lower(), two
    assert wer(" ".join(REFERENCE[:30]), f"{one} {two}") <= 0.15, (one, two)


def test_current_form_with_mulaw_and_a_theo_model_in_the_query(server: RunningServer) -> None:
    samples, rate = read_wav(FIXTURES / "en_librivox_8k.wav")
    ulaw = pcm16_to_ulaw(samples[: int(CLIP_ENDS_S[1] * rate)]) + b"\xff" * (rate * 2)
    log = EventLog()

    async def run() -> None:
        query = {"intent": "transcription", "model": BASE}
        async with _client(server).realtime.connect(extra_query=query) as conn:
            await conn.session.update(
                session={
                    "type": "transcription",
                    "audio": {"input": {"format": {"type": "audio/pcmu"}}},
                }
            )
            await send_paced(conn, chunks(ulaw, rate))
            async with asyncio.timeout(DEADLINE_S):
                await drain(conn, log)

    asyncio.run(run())

    updated = log.events[1]["session"]["audio"]["input"]
    assert updated["format"] == {"type": "audio/pcmu"}
    assert updated["transcription"]["model"] == BASE
    assert not log.of("error"), log.of("error")
    assert len(log.of("input_audio_buffer.speech_started")) >= 2
    transcript = " ".join(_transcripts(log))
    assert wer(" ".join(REFERENCE[:30]), transcript) <= 0.15, transcript
