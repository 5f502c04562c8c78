"""The session manager through the WebSocket: timeouts, HOLD, commit and backpressure."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.conftest import TINY_EN
from tests.helpers.realtime import SessionLog, pcm16_of, run_session, silence, ws_url
from tests.helpers.server import RunningServer
from tests.helpers.wer import wer
from tests.integration.test_realtime_e2e import UTTERANCES

pytestmark = pytest.mark.e2e

FRAME_BYTES = 640  # 20 ms at 16 kHz


async def _stream_then_listen(
    url: str, commands: list[dict[str, Any]], audio: bytes, listen_s: float = 30.0
) -> tuple[list[dict[str, Any]], list[float], int | None]:
    """Send ``commands``, stream ``audio`` at real-time pace, then only listen.

    Returns every event with its arrival time (seconds after the last frame was sent) and
    the close code, once the server closes the socket by itself.
    """
    events: list[dict[str, Any]] = []
    times: list[float] = []
    async with websockets.connect(url) as ws:
        done_sending = time.monotonic()

        async def receive() -> None:
            async for message in ws:
                events.append(json.loads(message))
                times.append(time.monotonic() - done_sending)

        receiver = asyncio.create_task(receive())
        for command in commands:
            await ws.send(json.dumps(command))
        started = time.monotonic()
        with contextlib.suppress(websockets.ConnectionClosed):  # the server may close first
            for index in range(0, len(audio), FRAME_BYTES):
                await ws.send(audio[index : index + FRAME_BYTES])
                # Pacing the sender like a microphone; not a race-winning sleep.
                due = started + (index + FRAME_BYTES) / 32_000
                await asyncio.sleep(max(0.0, due - time.monotonic()))
        done_sending = time.monotonic()
        await asyncio.wait_for(receiver, listen_s)  # ends when the server closes the socket
        return events, times, ws.close_code


def test_a_session_without_speech_is_closed_after_the_init_timeout(server: RunningServer) -> None:
    configure = {"type": "session.configure", "init_timeout_ms": 1000}
    # Audio keeps arriving, but it is silence: INIT waits for speech, not for bytes.
    events, _, code = asyncio.run(
        _stream_then_listen(ws_url(server.base_url, TINY_EN), [configure], silence(3.0, 16_000))
    )
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["session.created", "session.updated"]
    assert events[1]["config"]["init_timeout_ms"] == 1000
    assert events[2:] == [
        {"type": "session.closed", "session_id": events[0]["session_id"], "reason": "init_timeout"}
    ]
    assert code == 1000


def test_silence_goes_on_hold_and_a_long_hold_closes_the_session(server: RunningServer) -> None:
    speech, rate = pcm16_of("en_short.wav")
    configure = {
        "type": "session.configure",
        "silence_timeout_ms": 1000,
        "hold_timeout_ms": 1500,
        "closing_timeout_ms": 1000,
    }
    # After the speech (and the silence the VAD needs to end it) the client sends nothing:
    # the server's own timers must move the session on.
    events, times, code = asyncio.run(
        _stream_then_listen(
            ws_url(server.base_url, TINY_EN), [configure], speech + silence(1.0, rate)
        )
    )
    kinds = [e["type"] for e in events]
    tail = [k for k in kinds if k != "transcript.partial"]
    assert tail == [
        "session.created",
        "session.updated",
        "vad.speech_start",
        "transcript.final",
        "vad.speech_end",
        "session.hold",
        "session.closed",
    ], kinds
    final = next(e for e in events if e["type"] == "transcript.final")
    assert "young man" in final["text"]
    hold = events[kinds.index("session.hold")]
    assert hold["hold_timeout_ms"] == 1500
    assert hold["timestamp_ms"] >= 3000  # session audio time when the hold began
    assert events[-1]["reason"] == "hold_timeout"
    # Idle client: SILENCE (1 s) -> HOLD (1.5 s) -> CLOSING (1 s) -> the server closes.
    assert times[kinds.index("session.hold")] < times[-1]
    assert code == 1000


def test_speech_during_hold_resumes_the_session(server: RunningServer) -> None:
    speech, rate = pcm16_of("en_short.wav")
    audio = speech + silence(2.5, rate) + speech
    log = asyncio.run(
        run_session(
            ws_url(server.base_url, TINY_EN),
            audio,
            rate,
            commands_before=[
                {"type": "session.configure", "silence_timeout_ms": 1000, "hold_timeout_ms": 60_000}
            ],
        )
    )
    kinds = [k for k in log.types() if k != "transcript.partial"]
    assert kinds == [
        "session.created",
        "session.updated",
        "vad.speech_start",
        "transcript.final",
        "vad.speech_end",
        "session.hold",
        "vad.speech_start",
        "transcript.final",
        "vad.speech_end",
        "session.closed",
    ], kinds
    assert [e["segment_id"] for e in log.of("transcript.final")] == [1, 2]
    assert all("young man" in text for text in log.finals()), log.finals()
    assert log.events[-1]["reason"] == "client_close"


def test_commit_finalizes_the_segment_at_once(server: RunningServer) -> None:
    audio, rate = pcm16_of("en_librivox.wav")
    first_utterance = audio[: round(7.1 * rate) * 2]
    committed_at: list[float] = []

    async def commit_mid_utterance(seconds: float, ws: ClientConnection) -> None:
        if seconds >= 3.0 and not committed_at:
            committed_at.append(seconds)
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))

    log = asyncio.run(
        run_session(
            ws_url(server.base_url, TINY_EN),
            first_utterance,
            rate,
            on_progress=commit_mid_utterance,
        )
    )
    finals = log.of("transcript.final")
    assert [f["segment_id"] for f in finals] == [1, 2], log.types()
    # Segment 1 ended by the commit: no vad.speech_end, and its final came while the
    # speaker was still talking (the utterance ends at 7.1 s of audio).
    first_events = [e["type"] for e in log.events if e.get("segment_id") == 1]
    assert first_events[0] == "vad.speech_start" and first_events[-1] == "transcript.final"
    assert "vad.speech_end" not in first_events
    assert log.times[log.events.index(finals[0])] < 7.1
    assert finals[0]["end_ms"] <= 3300
    # The speech went on in segment 2, from where segment 1 was cut: nothing lost.
    second_start = next(
        e for e in log.events if e["type"] == "vad.speech_start" and e["segment_id"] == 2
    )
    assert 2900 <= second_start["timestamp_ms"] <= 3300
    assert wer(UTTERANCES[0], " ".join(log.finals())) <= 0.25, log.finals()
    with server.client() as client:
        metrics = client.get("/metrics").text
    assert 'theo_stt_segments_force_committed_total{reason="client"}' in metrics


def test_a_client_ten_times_faster_than_real_time_is_limited_alone(server: RunningServer) -> None:
    audio, rate = pcm16_of("en_librivox.wav")

    async def both() -> tuple[SessionLog, SessionLog]:
        return await asyncio.gather(
            run_session(ws_url(server.base_url, TINY_EN), audio, rate, pace=10.0),
            run_session(ws_url(server.base_url, TINY_EN), audio, rate),
        )

    fast, steady = asyncio.run(both())
    kinds = fast.types()
    assert "session.rate_limit" in kinds and "session.frames_dropped" in kinds
    assert kinds.index("session.rate_limit") < kinds.index("session.frames_dropped")
    # Asked to pause for the backlog, once it passed rate_limit_after_s (2 s, in ms rounded).
    assert all(e["delay_ms"] >= 2000 for e in fast.of("session.rate_limit"))
    drops = fast.of("session.frames_dropped")
    totals = [e["total_dropped_ms"] for e in drops]
    assert totals == sorted(totals) and sum(e["dropped_ms"] for e in drops) == totals[-1]
    # 28 s of audio in 2.8 s: about 10 s ahead of real time is kept, the rest dropped.
    assert 12_000 <= totals[-1] <= 19_000, totals
    # What was kept is transcribed in full: the first utterance lies in the kept part.
    assert fast.finals() and wer(UTTERANCES[0], fast.finals()[0]) <= 0.3, fast.finals()
    assert fast.events[-1]["reason"] == "client_close"

    # The real-time session next to it is untouched: no backpressure, every final right.
    assert not steady.of("session.rate_limit") and not steady.of("session.frames_dropped")
    assert [f["segment_id"] for f in steady.of("transcript.final")] == [1, 2, 3, 4, 5]
    assert wer(" ".join(UTTERANCES), " ".join(steady.finals())) <= 0.15, steady.finals()
    # ...and timely: each final but the last arrived while the client was still streaming.
    streaming_ended = len(audio) / (rate * 2) + 1.0
    final_times = [steady.times[steady.events.index(f)] for f in steady.of("transcript.final")]
    assert all(t < streaming_ended for t in final_times[:-1]), final_times
