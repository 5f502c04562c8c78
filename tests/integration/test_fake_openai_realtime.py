"""OpenAI's Realtime transcription protocol on WS /v1/realtime, driven by the official
``openai`` SDK against a real `theo serve` with the scripted fake STT engine.

The fake engine writes three script words per second of segment audio, so every
assertion is on exact content: event types and order, item chaining, texts, error codes.
Audio is real speech (the VAD in the server is real). One server serves the module.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from openai import AsyncOpenAI

from tests.helpers.audio import read_wav
from tests.helpers.fake import install_fake_stt, serving_fake
from tests.helpers.openai_realtime import (
    TRANSCRIPTION,
    EventLog,
    chunks,
    collect,
    pcm24k_of,
)
from tests.helpers.server import FIXTURES, RunningServer
from theo.audio.g711 import pcm16_to_ulaw

SCRIPT = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"
DEADLINE_S = 20.0
SPEECH = pcm24k_of("en_short.wav")
SILENCE = bytes(48_000)  # 1 s of 24 kHz PCM16


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("openai-home")
    install_fake_stt(home, transcript=SCRIPT, words_per_second=3)
    with serving_fake(home, tmp_path_factory.mktemp("openai-logs") / "serve.log") as running:
        yield running


def client(server: RunningServer) -> AsyncOpenAI:
    # The beta client always uses wss:// unless told the WebSocket base URL.
    ws_base = server.base_url.replace("http://", "ws://") + "/v1"
    return AsyncOpenAI(
        base_url=f"{server.base_url}/v1", websocket_base_url=ws_base, api_key="unused"
    )


def current_update(**audio_input: Any) -> dict[str, Any]:
    return {"type": "transcription", "audio": {"input": audio_input}}


def assert_turn(log: EventLog, item_id: str, *, vad: bool, current: bool = True) -> str:
    """One turn's events in OpenAI's order; returns its completed transcript."""
    committed = log.index("input_audio_buffer.committed", item_id)
    item_kind = "conversation.item.added" if current else "conversation.item.created"
    added = next(
        i for i, e in enumerate(log.events) if e["type"] == item_kind and e["item"]["id"] == item_id
    )
    completed = log.index(f"{TRANSCRIPTION}.completed", item_id)
    assert committed < added < completed
    if vad:
        assert (
            log.index("input_audio_buffer.speech_started", item_id)
            < log.index("input_audio_buffer.speech_stopped", item_id)
            < committed
        )
    if current:
        done = next(e for e in log.of("conversation.item.done") if e["item"]["id"] == item_id)
        assert log.events.index(done) > completed
    event = log.events[completed]
    deltas = "".join(
        e["delta"] for e in log.of(f"{TRANSCRIPTION}.delta") if e["item_id"] == item_id
    )
    assert deltas == event["transcript"]  # the fake's final extends its partials
    assert event["content_index"] == 0
    assert event["usage"]["type"] == "duration" and event["usage"]["seconds"] > 0.5
    return str(event["transcript"])


async def test_the_sdk_gets_current_form_events_turn_by_turn(server: RunningServer) -> None:
    log = EventLog()
    async with client(server).realtime.connect(extra_query={"intent": "transcription"}) as conn:
        # Sent before session.created arrives, as agent frameworks do.
        await conn.session.update(
            session=current_update(
                format={"type": "audio/pcm", "rate": 24000},
                transcription={"model": "gpt-4o-transcribe", "language": "en"},
                turn_detection={"type": "server_vad", "silence_duration_ms": 400},
            )
        )
        for audio in chunks(SPEECH + SILENCE, 48_000):
            await conn.input_audio_buffer.append(audio=audio)
        async with asyncio.timeout(DEADLINE_S):
            await collect(conn, log, "conversation.item.done")
        # A framework reusing the connection sends its update again: nothing changes.
        await conn.session.update(
            session=current_update(
                turn_detection={"type": "server_vad", "silence_duration_ms": 400}
            )
        )
        for audio in chunks(SPEECH + SILENCE, 48_000):
            await conn.input_audio_buffer.append(audio=audio)
        async with asyncio.timeout(DEADLINE_S):
            await collect(conn, log, "conversation.item.done", count=2)

    assert log.types()[:2] == ["session.created", "session.updated"]
    created, updated = log.events[0]["session"], log.events[1]["session"]
    assert created["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert updated["audio"]["input"]["transcription"]["model"] == "fake-stt"  # not OpenAI's
    assert updated["audio"]["input"]["transcription"]["language"] == "en"
    assert updated["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 400
    first, second = (e["item_id"] for e in log.of("input_audio_buffer.committed"))
    for item_id in (first, second):
        transcript = assert_turn(log, item_id, vad=True)
        words = transcript.split()
        assert len(words) >= 6 and " ".join(words) == " ".join(SCRIPT.split()[: len(words)])
    committed = log.of("input_audio_buffer.committed")
    assert [c["previous_item_id"] for c in committed] == [None, first]
    updates = log.of("session.updated")
    assert len(updates) == 2 and updates[1]["session"] == updated  # the same session


async def test_the_beta_sdk_speaks_the_beta_form_with_mulaw(server: RunningServer) -> None:
    samples, rate = read_wav(FIXTURES / "en_librivox_8k.wav")
    ulaw = pcm16_to_ulaw(samples[: rate * 4]) + b"\xff" * 8000
    log = EventLog()
    async with client(server).beta.realtime.connect(model="whisper-1") as conn:
        await conn.send(
            {
                "type": "transcription_session.update",
                "session": {
                    "input_audio_format": "g711_ulaw",
                    "input_audio_transcription": {"model": "whisper-1", "language": "en"},
                    "turn_detection": {"type": "server_vad", "threshold": 0.5},
                },
            }
        )
        for audio in chunks(ulaw, 8_000):
            await conn.input_audio_buffer.append(audio=audio)
        async with asyncio.timeout(DEADLINE_S):
            await collect(conn, log, f"{TRANSCRIPTION}.completed")

    assert log.types()[:2] == ["transcription_session.created", "transcription_session.updated"]
    assert log.events[1]["session"]["input_audio_format"] == "g711_ulaw"
    assert not log.of("conversation.item.added") and not log.of("conversation.item.done")
    item_id = log.of("input_audio_buffer.committed")[0]["item_id"]
    assert assert_turn(log, item_id, vad=True, current=False).startswith("alpha bravo")


async def test_manual_turns_commit_the_buffer_and_refuse_an_empty_commit(
    server: RunningServer,
) -> None:
    log = EventLog()
    async with client(server).realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.session.update(session=current_update(turn_detection=None))
        await conn.input_audio_buffer.commit()  # nothing appended yet
        async with asyncio.timeout(DEADLINE_S):
            await collect(conn, log, "error")
        for audio in chunks(SPEECH + SILENCE, 48_000):
            await conn.input_audio_buffer.append(audio=audio)
        await conn.input_audio_buffer.commit()
        async with asyncio.timeout(DEADLINE_S):
            await collect(conn, log, "conversation.item.done")

    error = log.of("error")[0]["error"]
    assert error["code"] == "input_audio_buffer_commit_empty"
    assert log.events[1]["session"]["audio"]["input"]["turn_detection"] is None
    assert not log.of("input_audio_buffer.speech_started")
    assert not log.of("input_audio_buffer.speech_stopped")
    item_id = log.of("input_audio_buffer.committed")[0]["item_id"]
    # The deltas come once the item exists.
    assert min(
        i for i, e in enumerate(log.events) if e["type"] == f"{TRANSCRIPTION}.delta"
    ) > log.index("input_audio_buffer.committed")
    transcript = assert_turn(log, item_id, vad=False)
    assert len(transcript.split()) >= 9  # the whole buffer, silence and all: 4.2 s


async def test_bad_input_gets_openai_errors_and_the_session_goes_on(
    server: RunningServer,
) -> None:
    url = server.base_url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"
    bad: list[tuple[Any, str, str | None]] = [
        ({"type": "input_audio_buffer.append", "audio": "not base64!"}, "invalid_value", "audio"),
        ({"type": "response.create"}, "invalid_value", "type"),
        (
            {"type": "session.update", "session": {"type": "transcription", "voice": "x"}},
            "unknown_parameter",
            "session.voice",
        ),
        (
            {"type": "session.update", "session": current_update(format="pcm")},
            "invalid_type",
            "session.audio.input.format",
        ),
        (
            {
                "type": "session.update",
                "session": current_update(turn_detection={"type": "semantic_vad"}),
            },
            "unsupported_value",
            "session.audio.input.turn_detection.type",
        ),
        (
            {
                "type": "session.update",
                "session": current_update(transcription={"language": 7}),
            },
            "invalid_value",
            "session.audio.input.transcription.language",
        ),
        ({"type": "input_audio_buffer.commit"}, "input_audio_buffer_commit_empty", None),
        ("{not json", "invalid_json", None),
        (
            {"type": "input_audio_buffer.append", "audio": "A" * (15 * 1024 * 1024 + 4)},
            "message_too_large",
            None,
        ),
    ]
    async with websockets.connect(url, max_size=None) as ws:
        created = json.loads(await ws.recv())
        assert created["type"] == "session.created"
        for i, (message, code, param) in enumerate(bad):
            text = (
                message
                if isinstance(message, str)
                else json.dumps({**message, "event_id": f"evt_{i}"})
            )
            await ws.send(text)
            event = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE_S))
            assert event["type"] == "error", (message, event)
            assert event["error"]["code"] == code, event
            assert event["error"]["type"] == "invalid_request_error"
            if param is not None:
                assert event["error"]["param"] == param, event
            if not isinstance(message, str) and code != "message_too_large":
                assert event["error"]["event_id"] == f"evt_{i}"
        await ws.send(b"\x00\x00")  # binary: audio goes in appends
        binary = json.loads(await ws.recv())
        assert binary["error"]["param"] == "audio"
        # Still serving: an append of an odd byte count is refused, a good one taken.
        odd = base64.b64encode(b"\x00\x00\x00").decode()
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": odd}))
        assert json.loads(await ws.recv())["error"]["param"] == "audio"
        await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        assert json.loads(await ws.recv())["type"] == "input_audio_buffer.cleared"


async def test_a_client_known_by_its_first_message_gets_the_beta_protocol(
    server: RunningServer,
) -> None:
    url = server.base_url.replace("http://", "ws://") + "/v1/realtime?model=fake-stt"
    async with websockets.connect(url) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "transcription_session.update",
                    "session": {"input_audio_transcription": {"prompt": "Alpha Bravo"}},
                }
            )
        )
        created = json.loads(await ws.recv())
        updated = json.loads(await ws.recv())
    assert created["type"] == "transcription_session.created"
    assert updated["type"] == "transcription_session.updated"
    assert updated["session"]["input_audio_transcription"]["prompt"] == "Alpha Bravo"
    assert updated["session"]["input_audio_transcription"]["model"] == "fake-stt"


async def test_theo_clients_still_get_the_theo_protocol(server: RunningServer) -> None:
    url = server.base_url.replace("http://", "ws://") + "/v1/realtime?model=fake-stt"
    async with websockets.connect(url) as ws:
        created = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "session.update"}))
        error = json.loads(await ws.recv())
    assert created["type"] == "session.created" and created["model"] == "fake-stt"
    assert error["code"] == "unknown_command"  # an OpenAI update only counts first


def test_the_sdk_authenticates_with_its_bearer_key(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    home = tmp_path_factory.mktemp("openai-key-home")
    install_fake_stt(home, transcript=SCRIPT, words_per_second=3)
    logs = tmp_path_factory.mktemp("openai-key-logs") / "serve.log"

    async def first_event(running: RunningServer, key: str) -> str:
        ws_base = running.base_url.replace("http://", "ws://") + "/v1"
        sdk = AsyncOpenAI(
            base_url=f"{running.base_url}/v1", websocket_base_url=ws_base, api_key=key
        )
        try:
            async with sdk.realtime.connect(extra_query={"intent": "transcription"}) as conn:
                async with asyncio.timeout(DEADLINE_S):
                    return (await conn.recv()).type
        except websockets.InvalidStatus as exc:
            return f"refused {exc.response.status_code}"

    with serving_fake(home, logs, extra_env={"THEO_API_KEYS": "sk-theo-test"}) as running:
        assert asyncio.run(first_event(running, "sk-theo-test")) == "session.created"
        assert asyncio.run(first_event(running, "wrong")) == "refused 401"
