"""The realtime WebSocket edge through a real `theo serve` and a real client, in seconds.

The scripted fake STT engine (three script words per second of segment audio) stands in
for the model, so every assertion is on exact content: event types and their order,
segment ids, texts, error codes and messages, close codes. One server serves the module.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.helpers.fake import FAKE_STT, install_fake_stt, serving_fake
from tests.helpers.realtime import pcm16_of, run_session, silence, ws_url
from tests.helpers.server import RunningServer, wait_for

SCRIPT = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"
MAX_SESSIONS = 3
FRAME_BYTES = 640  # 20 ms of 16 kHz PCM16
DEADLINE_S = 10.0  # for any awaited event


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("edge-home")
    install_fake_stt(home, transcript=SCRIPT, words_per_second=3)
    with serving_fake(
        home,
        tmp_path_factory.mktemp("edge-logs") / "serve.log",
        extra_env={"THEO_SESSION__MAX_SESSIONS": str(MAX_SESSIONS)},
    ) as running:
        yield running


class Client:
    """One realtime connection: JSON commands and PCM16 frames out, events in."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def command(self, kind: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"type": kind, **fields}))

    async def event(self) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), DEADLINE_S))  # type: ignore[no-any-return]

    async def until(self, kind: str) -> list[dict[str, Any]]:
        """Events up to and including the first of ``kind``."""
        events: list[dict[str, Any]] = []
        async with asyncio.timeout(DEADLINE_S):
            while not events or events[-1]["type"] != kind:
                events.append(await self.event())
        return events

    async def rest(self) -> list[dict[str, Any]]:
        """Every event until the server closes the connection."""
        events: list[dict[str, Any]] = []
        async with asyncio.timeout(DEADLINE_S):
            # An error close code ends the iteration with an exception, not silently.
            with contextlib.suppress(websockets.ConnectionClosedError):
                async for message in self.ws:
                    events.append(json.loads(message))
        return events

    async def speak(self, pcm: bytes, pace: float = 4.0) -> None:
        """Send ``pcm`` in 20 ms frames at ``pace`` x real time."""
        started = time.monotonic()
        for index in range(0, len(pcm), FRAME_BYTES):
            await self.ws.send(pcm[index : index + FRAME_BYTES])
            # Pacing the sender like a microphone; not a race-winning sleep.
            due = started + (index + FRAME_BYTES) / 32_000 / pace
            await asyncio.sleep(max(0.0, due - time.monotonic()))


@asynccontextmanager
async def connected(server: RunningServer, **query: str) -> AsyncIterator[Client]:
    """A WebSocket session of the fake model (``model`` and ``language`` override)."""
    url = ws_url(server.base_url, query.pop("model", FAKE_STT), query.pop("language", None))
    async with websockets.connect(url, max_size=None) as ws:
        yield Client(ws)


def _collapse(kinds: list[str]) -> list[str]:
    return [kind for kind, _ in itertools.groupby(kinds)]


def _error(code: str, message: str, recoverable: bool = True, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, "recoverable": recoverable, **extra}


def _active_sessions(server: RunningServer) -> float:
    with server.client() as client:
        lines = client.get("/metrics").text.splitlines()
    return sum(
        float(x.rsplit(" ", 1)[1]) for x in lines if x.startswith("theo_stt_active_sessions")
    )


def test_each_utterance_is_one_segment_with_its_events_in_order(server: RunningServer) -> None:
    speech, rate = pcm16_of("en_short.wav")
    audio = speech + silence(1.0, rate) + speech
    log = asyncio.run(run_session(ws_url(server.base_url, FAKE_STT), audio, rate, pace=4.0))

    created, closed = log.events[0], log.events[-1]
    assert created["type"] == "session.created" and created["model"] == FAKE_STT
    assert created["config"]["input_sample_rate"] == 16000
    assert closed == {
        "type": "session.closed",
        "session_id": created["session_id"],
        "reason": "client_close",
    }
    assert log.close_code == 1000
    segment_events = [e for e in log.events if e["type"].startswith(("vad.", "transcript."))]
    ids = [e["segment_id"] for e in segment_events]
    assert ids == sorted(ids) and set(ids) == {1, 2}  # never interleaved
    ends = []
    for segment in (1, 2):
        events = [e for e in segment_events if e["segment_id"] == segment]
        assert _collapse([e["type"] for e in events]) == [
            "vad.speech_start",
            "transcript.partial",
            "transcript.final",
            "vad.speech_end",
        ]
        start, final, end = events[0], events[-2], events[-1]
        assert list(final) == [
            "type", "segment_id", "text", "start_ms", "end_ms",
            "language", "confidence", "words",
        ]  # fmt: skip
        words = final["text"].split()
        assert len(words) >= 6 and words == SCRIPT.split()[: len(words)]
        assert [w["word"] for w in final["words"]] == words
        assert (final["language"], final["confidence"]) == ("en", 0.9)
        for partial in events[1:-2]:
            assert final["text"].startswith(partial["text"])
        assert final["start_ms"] <= start["timestamp_ms"] < end["timestamp_ms"]
        ends.append(end["timestamp_ms"])
        if segment == 2:
            assert start["timestamp_ms"] > ends[0]


def test_close_finalizes_the_open_segment_then_refuses_input(server: RunningServer) -> None:
    speech, _ = pcm16_of("en_short.wav")

    async def session() -> tuple[list[dict[str, Any]], list[dict[str, Any]], int | None]:
        async with connected(server) as client:
            created = await client.event()
            await client.speak(speech[: 32_000 * 2])  # 2 s: mid-utterance
            await client.command("session.close")
            events = [created, *await client.until("session.closed")]
            await client.ws.send(bytes(FRAME_BYTES))
            await client.command("session.configure", language="en")
            after = [await client.event(), await client.event()]
            await client.ws.close()
            return events, after, client.ws.close_code

    events, after, close_code = asyncio.run(session())
    kinds = _collapse([e["type"] for e in events])
    # The commit at close ends the segment: its final, but no vad.speech_end.
    assert kinds == [
        "session.created",
        "vad.speech_start",
        "transcript.partial",
        "transcript.final",
        "session.closed",
    ]
    final = events[-2]
    words = final["text"].split()
    assert final["segment_id"] == 1 and len(words) >= 4 and words == SCRIPT.split()[: len(words)]
    assert events[-1]["reason"] == "client_close"
    closed = _error("session_closed", "The session is closed.", recoverable=False)
    assert after == [closed, closed]
    assert close_code == 1000


def test_silence_puts_the_session_on_hold_and_the_hold_timeout_ends_it(
    server: RunningServer,
) -> None:
    speech, rate = pcm16_of("en_short.wav")
    timeouts = {"silence_timeout_ms": 1000, "hold_timeout_ms": 1000, "closing_timeout_ms": 1000}

    async def session() -> tuple[list[dict[str, Any]], float, int | None, str | None]:
        async with connected(server) as client:
            events = [await client.event()]
            await client.command("session.configure", **timeouts)
            await client.speak(speech + silence(0.5, rate))
            events += await client.until("session.closed")
            closed_at = time.monotonic()
            events += await client.rest()
            return (
                events,
                time.monotonic() - closed_at,
                client.ws.close_code,
                client.ws.close_reason,
            )

    events, closing_s, close_code, close_reason = asyncio.run(session())
    updated = events[1]
    assert updated["type"] == "session.updated"
    assert {k: updated["config"][k] for k in timeouts} == timeouts
    kinds = [e["type"] for e in events]
    assert kinds[-4:] == ["transcript.final", "vad.speech_end", "session.hold", "session.closed"]
    hold, end = events[-2], events[-3]
    assert hold == {
        "type": "session.hold",
        "session_id": events[0]["session_id"],
        "timestamp_ms": hold["timestamp_ms"],
        "hold_timeout_ms": 1000,
    }
    assert hold["timestamp_ms"] > end["timestamp_ms"]
    assert events[-1]["reason"] == "hold_timeout"
    # CLOSING waits closing_timeout_ms for the client, then the server closes.
    assert (close_code, close_reason) == (1000, "hold_timeout")
    assert closing_s >= 0.8


def test_audio_without_speech_does_not_stop_the_init_timeout(server: RunningServer) -> None:
    async def session() -> tuple[list[dict[str, Any]], int | None, str | None]:
        async with connected(server) as client:
            events = [await client.event()]
            await client.command("session.configure", init_timeout_ms=1000)
            events.append(await client.event())

            async def keep_sending() -> None:
                for _ in range(250):  # 5 s of silence at real time; the server ends first
                    await client.ws.send(bytes(FRAME_BYTES))
                    await asyncio.sleep(0.02)

            sender = asyncio.create_task(keep_sending())
            try:
                events += await client.rest()
            finally:
                sender.cancel()
            return events, client.ws.close_code, client.ws.close_reason

    events, close_code, close_reason = asyncio.run(session())
    assert [e["type"] for e in events] == ["session.created", "session.updated", "session.closed"]
    assert events[-1] == {
        "type": "session.closed",
        "session_id": events[0]["session_id"],
        "reason": "init_timeout",
    }
    assert (close_code, close_reason) == (1000, "init_timeout")


def test_bad_messages_get_the_documented_errors_and_the_session_goes_on(
    server: RunningServer,
) -> None:
    speech, rate = pcm16_of("en_short.wav")
    bad: list[tuple[str | bytes, dict[str, Any]]] = [
        (
            "{not json",
            _error(
                "invalid_json",
                "Invalid JSON: Expecting property name enclosed in double quotes.",
            ),
        ),
        (
            '{"language": "en"}',
            _error("invalid_command", "Commands are JSON objects with a 'type'."),
        ),
        (
            '{"type": "session.dance"}',
            _error(
                "unknown_command",
                "Unknown command 'session.dance'. Known: input_audio_buffer.commit, "
                "session.cancel, session.close, session.configure, tts.cancel, tts.speak.",
            ),
        ),
        (
            b"\x00\x01\x02",
            _error(
                "invalid_value",
                "Audio frames must be 16-bit PCM: the frame has an odd number of bytes.",
                param="audio",
            ),
        ),
        (
            bytes(200_000),
            _error(
                "frame_too_large",
                "Audio frames may hold at most 192000 bytes; send 20-100 ms frames.",
            ),
        ),
        (
            '{"type": "session.configure", "input_sample_rate": "8000"}',
            _error(
                "invalid_value",
                "Invalid session setting 'input_sample_rate': Input should be a valid integer.",
                param="input_sample_rate",
            ),
        ),
    ]

    async def session() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with connected(server) as client:
            await client.event()
            answers = []
            for message, _ in bad:
                await client.ws.send(message)
                answers.append(await client.event())
            await client.speak(speech + silence(1.0, rate))
            await client.command("session.close")
            return answers, await client.until("session.closed")

    answers, events = asyncio.run(session())
    assert answers == [expected for _, expected in bad]
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert len(finals) == 1 and finals[0]["text"].startswith("alpha bravo charlie")
    assert server.health()["status"] == "ok"


def test_too_many_invalid_messages_in_a_row_close_the_connection(server: RunningServer) -> None:
    async def session() -> tuple[list[dict[str, Any]], int | None, str | None]:
        async with connected(server) as client:
            await client.event()
            for _ in range(20):
                await client.ws.send("{")
            events = await client.rest()
            return events, client.ws.close_code, client.ws.close_reason

    events, close_code, close_reason = asyncio.run(session())
    assert [e["code"] for e in events] == ["invalid_json"] * 20
    assert (close_code, close_reason) == (1008, "too many invalid messages")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {"model": "no-such-model"},
            _error(
                "model_not_found",
                f"Model 'no-such-model' is not installed. Installed models: {FAKE_STT}.",
                recoverable=False,
            ),
        ),
        (
            {"language": "pt"},
            _error(
                "invalid_value",
                f"Model '{FAKE_STT}' supports only: en.",
                recoverable=False,
                param="language",
            ),
        ),
    ],
)
def test_bad_connect_parameters_are_refused_with_1008(
    server: RunningServer, query: dict[str, str], expected: dict[str, Any]
) -> None:
    async def session() -> tuple[list[dict[str, Any]], int | None]:
        async with connected(server, **query) as client:
            return await client.rest(), client.ws.close_code

    events, close_code = asyncio.run(session())
    assert events == [expected]
    assert close_code == 1008


def test_sessions_beyond_the_limit_are_refused_until_one_ends(server: RunningServer) -> None:
    wait_for(lambda: _active_sessions(server) == 0, 10, "earlier sessions to end")

    async def sessions() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        async with (
            connected(server) as first,
            connected(server) as second,
            connected(server) as third,
        ):
            created = [await c.event() for c in (first, second, third)]
            async with connected(server) as fourth:
                refused = await fourth.rest()
                assert fourth.ws.close_code == 1013
            await first.command("session.cancel")
            cancelled = await first.until("session.closed")
            await first.ws.close()
            await asyncio.to_thread(
                wait_for, lambda: _active_sessions(server) == 2, 10, "the cancelled session's place"
            )
            async with connected(server) as fifth:
                again = await fifth.event()
        return created + cancelled, refused, again

    opened, refused, again = asyncio.run(sessions())
    assert [e["type"] for e in opened] == ["session.created"] * 3 + ["session.closed"]
    assert opened[-1] == {
        "type": "session.closed",
        "session_id": opened[0]["session_id"],
        "reason": "cancelled",
    }
    assert refused == [
        _error(
            "too_many_sessions",
            f"The server already serves {MAX_SESSIONS} realtime sessions, its limit "
            "(THEO_SESSION__MAX_SESSIONS); try again later.",
            recoverable=False,
        )
    ]
    assert again["type"] == "session.created"


def test_audio_far_ahead_of_real_time_is_limited_then_dropped(server: RunningServer) -> None:
    # The sessions of the test before may still be closing on a loaded machine.
    wait_for(lambda: _active_sessions(server) == 0, 10, "earlier sessions to end")

    async def session() -> list[dict[str, Any]]:
        async with connected(server) as client:
            await client.event()
            for _ in range(120):  # 12 s of silence at once, in 100 ms frames
                await client.ws.send(bytes(3200))
            await client.command("session.close")
            return await client.until("session.closed")

    events = asyncio.run(session())
    limits = [e for e in events if e["type"] == "session.rate_limit"]
    drops = [e for e in events if e["type"] == "session.frames_dropped"]
    assert limits and list(limits[0]) == ["type", "delay_ms", "message"]
    assert limits[0]["delay_ms"] >= 2000
    assert limits[0]["message"] == "Audio is arriving faster than real time; pause for delay_ms."
    assert drops and sum(d["dropped_ms"] for d in drops) == drops[-1]["total_dropped_ms"]
    assert drops[-1]["total_dropped_ms"] >= 1000
    assert drops[0]["message"] == "Audio was dropped: it arrived too far ahead of real time."
    assert events.index(limits[0]) < events.index(drops[0])
    assert events[-1]["reason"] == "client_close"
