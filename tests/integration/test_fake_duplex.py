"""A session that speaks, through a real `theo serve` on the fake engines: ``tts.speak`` and
``tts.cancel`` over a real WebSocket, the binary audio, mute-on-speak, bad input and a
client that never reads.

The fake TTS engine speaks a 440 Hz tone of 0.05 s per character at 16 kHz, 0.2 s of
"work" per sentence; the fake STT hears its script at three words a second of speech.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.helpers.fake import FAKE_STT, FAKE_TTS, install_fake_stt, install_fake_tts, serving_fake
from tests.helpers.realtime import SessionLog, pcm16_of, silence, ws_url
from tests.helpers.server import RunningServer, wait_for
from theo.audio.g711 import alaw_to_pcm16

SCRIPT = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"
SEND_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("fake-duplex-home")
    install_fake_stt(home, transcript=SCRIPT, words_per_second=3)
    install_fake_tts(home, seconds_per_char=0.05, synthesis_delay_s=0.2)
    with serving_fake(
        home,
        tmp_path_factory.mktemp("fake-duplex-logs") / "serve.log",
        extra_env={"THEO_SESSION__SEND_TIMEOUT_S": str(SEND_TIMEOUT_S)},
    ) as running:
        yield running


class Client:
    """A realtime client that records text events and binary audio in arrival order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.log = SessionLog()
        self._started = time.monotonic()

    async def send(self, **command: Any) -> None:
        await self.ws.send(json.dumps(command))

    async def until(self, kind: str, wait_s: float = 15.0, **match: Any) -> dict[str, Any]:
        """Receive until an event of ``kind`` whose fields include ``match``."""
        async with asyncio.timeout(wait_s):
            while True:
                message = await self.ws.recv()
                at = time.monotonic() - self._started
                if isinstance(message, bytes):
                    self.log.record_audio(message, at)
                    continue
                event = json.loads(message)
                self.log.events.append(event)
                self.log.times.append(at)
                if event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
                    return event

    async def drain(self, seconds: float) -> None:
        """Receive whatever comes for ``seconds``."""
        with contextlib.suppress(TimeoutError):
            await self.until("never", wait_s=seconds)

    def audio_between(self, first: dict[str, Any], last: dict[str, Any]) -> bytes:
        """The binary messages received between two events."""
        lo, hi = self.log.events.index(first) + 1, self.log.events.index(last) + 1
        pairs = zip(self.log.audio, self.log.audio_after, strict=True)
        return b"".join(audio for audio, seen in pairs if lo <= seen < hi)


def _url(server: RunningServer) -> str:
    return ws_url(server.base_url, FAKE_STT)


def _peak_hz(pcm16: bytes, rate: int) -> float:
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def test_speak_streams_audio_at_the_session_rate_and_queues_in_order(
    server: RunningServer,
) -> None:
    async def scenario() -> Client:
        async with websockets.connect(_url(server), max_size=None) as ws:
            client = Client(ws)
            await client.send(type="session.configure", output_sample_rate=8_000)
            await client.send(type="tts.speak", text="Hello there.", request_id="a")
            await client.send(type="tts.speak", text="Bye now.", request_id="b")
            await client.until("tts.speaking_end", request_id="b")
            return client

    client = asyncio.run(scenario())
    marks = [e for e in client.log.events if e["type"].startswith("tts.")]
    assert [(e["type"], e["request_id"]) for e in marks] == [
        ("tts.speaking_start", "a"),
        ("tts.speaking_end", "a"),
        ("tts.speaking_start", "b"),
        ("tts.speaking_end", "b"),
    ]
    start_a, end_a, start_b, end_b = marks
    assert start_a == {
        "type": "tts.speaking_start",
        "request_id": "a",
        "model": FAKE_TTS,
        "voice": "tone",
        "sample_rate": 8_000,
        "format": "pcm16",
    }
    assert end_a["reason"] == end_b["reason"] == "done"
    for start, end, chars in ((start_a, end_a, 12), (start_b, end_b, 8)):
        audio = client.audio_between(start, end)
        # The tone the engine made, resampled to 8 kHz: the same pitch, the same length.
        assert abs(_peak_hz(audio, 8_000) - 440) < 5
        assert end["duration_ms"] == round(len(audio) / 2 / 8_000 * 1000)
        assert end["duration_ms"] >= chars * 50
    assert not client.audio_between(client.log.events[0], start_a)


def test_cancel_stops_the_reply_and_nothing_of_it_follows(server: RunningServer) -> None:
    long_text = " ".join(f"Sentence number {n} is here." for n in range(40))

    async def scenario() -> tuple[Client, float, float]:
        async with websockets.connect(_url(server), max_size=None) as ws:
            client = Client(ws)
            await client.send(type="tts.speak", text=long_text, request_id="long")
            await client.until("tts.speaking_start")
            while not client.log.audio:
                await _one(client)
            asked = time.monotonic()
            await client.send(type="tts.cancel", request_id="long")
            await client.until("tts.speaking_end", request_id="long")
            answered = time.monotonic()
            await client.drain(1.0)
            await client.send(type="tts.cancel", request_id="long")  # no longer known
            await client.until("error")
            await client.send(type="tts.speak", text="Still here.", request_id="after")
            await client.until("tts.speaking_end", request_id="after")
            return client, asked, answered

    client, asked, answered = asyncio.run(scenario())
    events = client.log.events
    end = next(e for e in events if e["type"] == "tts.speaking_end")
    assert end["reason"] == "cancelled"
    assert 0 < end["duration_ms"] < 40 * 25 * 50  # far from the whole text
    start_after = next(e for e in events if e.get("request_id") == "after")
    # Between the end of "long" and the start of "after": not one byte of audio.
    assert not client.audio_between(end, start_after)
    error = next(e for e in events if e["type"] == "error")
    assert (error["param"], error["recoverable"]) == ("request_id", True)
    assert answered - asked < 2.0  # generous: the check is that it does not wait for the text
    assert events[-1] == {
        "type": "tts.speaking_end",
        "request_id": "after",
        "reason": "done",
        "duration_ms": events[-1]["duration_ms"],
    }


async def _one(client: Client) -> None:
    message = await asyncio.wait_for(client.ws.recv(), 10)
    at = time.monotonic()
    if isinstance(message, bytes):
        client.log.record_audio(message, at)
    else:
        client.log.events.append(json.loads(message))
        client.log.times.append(at)


def test_speech_while_the_reply_plays_is_muted_then_heard(server: RunningServer) -> None:
    speech, rate = pcm16_of("en_short.wav")
    frame = rate // 50 * 2
    # 60 sentences: 12 s of synthesis (0.2 s each), still going when the caller is done.
    long_text = " ".join(f"Reply sentence {n}." for n in range(60))

    async def talk(client: Client, audio: bytes) -> None:
        started = time.monotonic()
        for index in range(0, len(audio), frame):
            await client.ws.send(audio[index : index + frame])
            due = started + (index + frame) / (rate * 2)
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def scenario() -> Client:
        async with websockets.connect(_url(server), max_size=None) as ws:
            client = Client(ws)
            await client.send(type="tts.speak", text=long_text, request_id="reply")
            await client.until("tts.speaking_start")
            receiving = asyncio.create_task(client.drain(4.0))
            await talk(client, speech + silence(0.5, rate))  # over the reply: muted
            await receiving
            await client.send(type="tts.cancel")
            await client.until("tts.speaking_end")
            await talk(client, speech + silence(1.0, rate))  # unmuted: heard
            await client.until("transcript.final")
            return client

    client = asyncio.run(scenario())
    types = client.log.types()
    cancelled = types.index("tts.speaking_end")
    assert "vad.speech_start" not in types[:cancelled]
    assert "vad.speech_start" in types[cancelled:]
    final = client.log.of("transcript.final")[0]
    assert final["text"].lower().startswith("alpha bravo")
    metrics = _metrics(server)
    assert metrics["theo_muted_audio_seconds_total"] >= 2.5
    assert metrics['theo_tts_session_speech_total{reason="cancelled"}'] >= 1


@pytest.mark.parametrize(
    ("command", "param"),
    [
        ({"type": "tts.speak", "text": ""}, "text"),
        ({"type": "tts.speak", "text": "x" * 10_000}, "text"),
        ({"type": "tts.speak", "text": "Hi.", "voice": "nobody"}, "voice"),
        ({"type": "tts.speak", "text": "Hi.", "model": "no-such-model"}, "model"),
        ({"type": "tts.speak", "text": "Hi.", "model": FAKE_STT}, "model"),
        ({"type": "tts.speak", "text": "Hi.", "speed": 5.0}, "speed"),
        ({"type": "tts.speak", "text": "Hi.", "speed": "fast"}, "speed"),
        ({"type": "tts.speak", "text": "Hi.", "request_id": 5}, "request_id"),
        ({"type": "tts.cancel", "request_id": "unknown"}, "request_id"),
        ({"type": "tts.cancel", "request_id": 5}, "request_id"),
        ({"type": "session.configure", "tts_model": FAKE_STT}, "tts_model"),
        ({"type": "session.configure", "output_audio_format": "mp3"}, "output_audio_format"),
        (
            {
                "type": "session.configure",
                "output_audio_format": "g711_alaw",
                "output_sample_rate": 16_000,
            },
            "output_sample_rate",
        ),
    ],
)
def test_bad_speech_commands_are_refused_and_the_session_goes_on(
    server: RunningServer, command: dict[str, Any], param: str
) -> None:
    async def scenario() -> Client:
        async with websockets.connect(_url(server), max_size=None) as ws:
            client = Client(ws)
            await client.ws.send(json.dumps(command))
            await client.until("error")
            await client.send(type="tts.speak", text="Fine.", request_id="ok")
            await client.until("tts.speaking_end", request_id="ok")
            return client

    client = asyncio.run(scenario())
    (error,) = client.log.of("error")
    assert (error["code"], error["param"], error["recoverable"]) == ("invalid_value", param, True)
    assert client.log.of("tts.speaking_start")[0]["request_id"] == "ok"
    assert client.log.of("tts.speaking_end")[-1]["reason"] == "done"


def test_g711_output_over_the_websocket(server: RunningServer) -> None:
    async def scenario() -> Client:
        async with websockets.connect(_url(server), max_size=None) as ws:
            client = Client(ws)
            await client.send(type="session.configure", output_audio_format="g711_alaw")
            await client.send(type="tts.speak", text="Hello.")
            await client.until("tts.speaking_end")
            return client

    client = asyncio.run(scenario())
    (start,) = client.log.of("tts.speaking_start")
    (end,) = client.log.of("tts.speaking_end")
    assert (start["sample_rate"], start["format"]) == (8_000, "g711_alaw")
    audio = b"".join(client.log.audio)
    assert end["duration_ms"] == round(len(audio) / 8_000 * 1000)  # one byte a sample
    # The tables are checked against audioop in tests/unit/telephony/test_g711.py.
    assert abs(_peak_hz(alaw_to_pcm16(audio).tobytes(), 8_000) - 440) < 5


def _handshake(port: int) -> socket.socket:
    """A raw WebSocket client with a tiny receive buffer, that will never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /v1/realtime?model={FAKE_STT} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(1)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


def _text_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    size = len(payload)
    header = bytes([0x81, 0x80 | size]) if size < 126 else bytes([0x81, 0xFE]) + size.to_bytes(2)
    return header + mask + masked


def test_a_client_that_never_reads_is_cut_off_and_others_go_on(server: RunningServer) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    text = " ".join(f"This is sentence {n} of a long reply." for n in range(100))
    sock = _handshake(port)
    try:
        for n in range(3):
            command = {"type": "tts.speak", "text": text, "request_id": f"r{n}"}
            sock.sendall(_text_frame(json.dumps(command)))

        async def other_session() -> Client:
            async with websockets.connect(_url(server), max_size=None) as ws:
                client = Client(ws)
                await client.send(type="tts.speak", text="Meanwhile.", request_id="m")
                await client.until("tts.speaking_end", request_id="m")
                return client

        assert asyncio.run(other_session()).log.of("tts.speaking_end")[0]["reason"] == "done"
        wait_for(
            lambda: "session_slow_consumer" in server.log_text(),
            SEND_TIMEOUT_S + 30,
            "the server to give up on the client that does not read",
        )
    finally:
        sock.close()
    wait_for(lambda: _metrics(server)["theo_stt_active_sessions"] == 0, 10, "no session left open")
    assert server.process.poll() is None


def _metrics(server: RunningServer) -> dict[str, float]:
    with server.client() as client:
        text = client.get("/metrics").text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values
