"""Crash recovery in its racy windows, through a real `theo serve` and a real client.

The scripted fake STT engine stands in for the model and is told where to die: on its
next decode (``crash_file``), as a session opens a stream on it (``stream_crash_file``)
or while it loads after a restart (``load_crash_file``); the test SIGKILLs it too. Every
case asserts on content: the error events (``worker_crashed`` with the segment the
session resumes from), one final per segment with exactly the text a session without
crashes gets, segment ids strictly increasing, and no close but the client's (or 1011
with ``worker_unavailable`` once the worker is given up on).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.helpers.fake import FAKE_STT, install_fake_stt, serving_fake
from tests.helpers.realtime import pcm16_of, silence, ws_url
from tests.helpers.server import RunningServer

SCRIPT = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"
FRAME_BYTES = 640  # 20 ms of 16 kHz PCM16
PACE = 6.0
DEADLINE_S = 15.0  # for anything awaited: a worker restart takes about a second here
SPEECH, RATE = pcm16_of("en_short.wav")  # one utterance, 2.99 s
HALF = len(SPEECH) // 2 // 2 * 2
SPOKEN_WORDS = 8  # 2.99 s at three script words a second


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("races-home")
    install_fake_stt(
        home,
        transcript=SCRIPT,
        words_per_second=3,
        crash_file=str(home / "crash-next-decode"),
        stream_crash_file=str(home / "crash-next-stream"),
        load_crash_file=str(home / "crash-next-load"),
    )
    # Restarts at once, and never given up on, however many this module causes.
    env = {
        "THEO_WORKER__RESTART_BACKOFF_S": "0.1",
        "THEO_WORKER__RESTART_WINDOW_S": "0.5",
        "THEO_WORKER__MAX_RESTARTS": "100",
    }
    with serving_fake(home, tmp_path_factory.mktemp("races-logs") / "serve.log", env) as running:
        yield running


def _arm(server: RunningServer, name: str) -> Path:
    path = Path(server.env["THEO_HOME"]) / name
    path.touch()
    return path


class Session:
    """One realtime connection; its events are collected as they come."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in self.ws:
                self.events.append(json.loads(message))
                self._changed.set()
        self._changed.set()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def crashes(self) -> list[tuple[str, int | None]]:
        return [(e["code"], e.get("resume_segment_id")) for e in self.of("error")]

    async def until(self, predicate: Callable[[], object], what: str) -> None:
        """Wait for ``predicate()`` to hold after some event (or the end)."""
        try:
            async with asyncio.timeout(DEADLINE_S):
                while not predicate():
                    if self._reader.done():
                        raise AssertionError(f"closed before {what}: {self.events}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"no {what} within {DEADLINE_S} s: {self.events}") from None

    async def speak(self, pcm: bytes) -> None:
        """Send ``pcm`` in 20 ms frames at ``PACE`` x real time."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        for index in range(0, len(pcm), FRAME_BYTES):
            await self.ws.send(pcm[index : index + FRAME_BYTES])
            # Pacing the sender like a microphone; not a race-winning sleep.
            due = started + (index + FRAME_BYTES) / (RATE * 2) / PACE
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def close(self) -> None:
        """``session.close``, then every event until the server closes the socket."""
        await self.ws.send(json.dumps({"type": "session.close"}))
        async with asyncio.timeout(DEADLINE_S):
            await self._reader


@asynccontextmanager
async def connected(server: RunningServer) -> AsyncIterator[Session]:
    async with websockets.connect(ws_url(server.base_url, FAKE_STT), max_size=None) as ws:
        session = Session(ws)
        await session.until(lambda: session.events, "session.created")
        yield session


async def _worker(server: RunningServer) -> dict[str, Any]:
    return await asyncio.to_thread(server.worker, FAKE_STT)


async def _kill(server: RunningServer) -> int:
    pid: int = (await _worker(server))["pid"]
    os.kill(pid, signal.SIGKILL)
    return pid


async def _recovered_count(server: RunningServer) -> int:
    text = await asyncio.to_thread(server.log_text)
    return text.count('"session_recovered"')


async def _until_recovered(server: RunningServer, count: int) -> None:
    """Poll the server's log until ``count`` recoveries are logged."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while await _recovered_count(server) < count:
        assert loop.time() < deadline, f"fewer than {count} recoveries logged"
        await asyncio.sleep(0.05)


def _assert_whole(session: Session, segments: int) -> None:
    """Every segment exactly one final with the scripted text, in order; a client close."""
    finals = session.of("transcript.final")
    assert [f["segment_id"] for f in finals] == list(range(1, segments + 1))
    for final in finals:
        # The utterance's words, no audio lost or sent twice (half of it again would add
        # four). The fake hears words in silence too: with its pre-roll and the pause
        # after it, a segment may hold one word more than the speech.
        words = final["text"].split()
        assert words == SCRIPT.split()[: len(words)], final
        assert SPOKEN_WORDS <= len(words) <= SPOKEN_WORDS + 1, final
    assert [e["segment_id"] for e in session.of("vad.speech_start")] == list(range(1, segments + 1))
    assert all(e["recoverable"] for e in session.of("error")), session.of("error")
    assert session.events[-1]["type"] == "session.closed"
    assert session.events[-1]["reason"] == "client_close"
    assert session.ws.close_code == 1000


async def _crash_mid_utterance(
    server: RunningServer, session: Session, act: Callable[[], Awaitable[None]]
) -> None:
    """Speak half the utterance, ``act`` (kill the worker...), then the rest and silence."""
    await session.speak(SPEECH[:HALF])
    await act()
    await session.speak(SPEECH[HALF:] + silence(1.0, RATE))


async def test_a_crash_between_segments_is_reported_at_once_and_the_next_utterance_heard(
    server: RunningServer,
) -> None:
    async with connected(server) as session:
        await session.speak(SPEECH + silence(1.0, RATE))
        await session.until(lambda: session.of("vad.speech_end"), "the first segment's end")
        await _kill(server)
        # Noticed while the client sends nothing: the open stream's break is the detection.
        await session.until(lambda: session.of("error"), "worker_crashed")
        assert session.crashes() == [("worker_crashed", 2)]
        await session.speak(SPEECH + silence(1.0, RATE))
        await session.close()

    _assert_whole(session, segments=2)
    assert session.crashes() == [("worker_crashed", 2)]
    kinds = [e["type"] for e in session.events]
    assert kinds.index("error") < kinds.index("vad.speech_start", kinds.index("error"))


async def test_a_crash_as_the_stream_reopens_is_one_more_break_and_the_socket_answers(
    server: RunningServer,
) -> None:
    async with connected(server) as session:

        async def kill_twice() -> None:
            _arm(server, "crash-next-stream")  # the restarted worker dies as it is reopened
            await _kill(server)
            await session.until(lambda: len(session.of("error")) == 2, "the second break")
            pong = await session.ws.ping()  # the session still answers its socket
            async with asyncio.timeout(DEADLINE_S):
                await pong

        await _crash_mid_utterance(server, session, kill_twice)
        await session.close()

    _assert_whole(session, segments=1)
    assert session.crashes() == [("worker_crashed", 1), ("worker_crashed", 1)]


async def test_a_crash_during_the_replay_is_survived(server: RunningServer) -> None:
    async with connected(server) as session:

        async def kill_then_crash_the_replay() -> None:
            await _kill(server)
            await session.until(lambda: session.of("error"), "worker_crashed")
            # Armed while the worker is down: its successor's first decode is of the replay.
            _arm(server, "crash-next-decode")

        await _crash_mid_utterance(server, session, kill_then_crash_the_replay)
        await session.close()

    _assert_whole(session, segments=1)
    assert session.crashes() == [("worker_crashed", 1), ("worker_crashed", 1)]
    assert not (Path(server.env["THEO_HOME"]) / "crash-next-decode").exists()


async def test_a_crash_while_the_session_waits_for_the_worker_is_the_same_outage(
    server: RunningServer,
) -> None:
    restarts = (await _worker(server))["restarts"]
    async with connected(server) as session:

        async def kill_and_crash_the_restart() -> None:
            _arm(server, "crash-next-load")  # the restarted worker dies while it loads
            await _kill(server)

        await _crash_mid_utterance(server, session, kill_and_crash_the_restart)
        await session.close()

    _assert_whole(session, segments=1)
    assert session.crashes() == [("worker_crashed", 1)]  # no stream broke a second time
    assert (await _worker(server))["restarts"] == restarts + 2


async def test_two_crashes_in_quick_succession_lose_and_repeat_nothing(
    server: RunningServer,
) -> None:
    recovered = await _recovered_count(server)
    async with connected(server) as session:

        async def kill_twice() -> None:
            await _kill(server)
            await _until_recovered(server, recovered + 1)
            await _kill(server)  # the moment the session is carried again

        await _crash_mid_utterance(server, session, kill_twice)
        await session.close()

    _assert_whole(session, segments=1)
    assert session.crashes() == [("worker_crashed", 1), ("worker_crashed", 1)]


async def test_an_idle_session_survives_crash_after_crash(server: RunningServer) -> None:
    recovered = await _recovered_count(server)
    async with connected(server) as session:
        await session.speak(SPEECH + silence(1.0, RATE))
        await session.until(lambda: session.of("transcript.final"), "the first final")
        for kill in range(1, 5):  # more breaks than a session with audio would survive
            await _kill(server)
            await _until_recovered(server, recovered + kill)
        await session.speak(SPEECH + silence(1.0, RATE))
        await session.close()

    _assert_whole(session, segments=2)
    assert session.crashes() == [("worker_crashed", 2)] * 4


@pytest.fixture(scope="module")
def fragile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("fragile-home")
    install_fake_stt(home, transcript=SCRIPT, words_per_second=3)
    env = {"THEO_WORKER__MAX_RESTARTS": "0"}  # the first crash is given up on
    with serving_fake(home, tmp_path_factory.mktemp("fragile-logs") / "serve.log", env) as running:
        yield running


async def test_a_worker_given_up_on_fails_the_session_loudly(
    fragile_server: RunningServer,
) -> None:
    async with connected(fragile_server) as session:
        await session.speak(SPEECH[:HALF])
        await _kill(fragile_server)
        await session.until(lambda: session.ws.close_code is not None, "the server's close")

    errors = [
        (e["code"], e["recoverable"], e.get("resume_segment_id")) for e in session.of("error")
    ]
    assert errors == [("worker_crashed", True, 1), ("worker_unavailable", False, None)]
    assert session.events[-1] == {
        "type": "session.closed",
        "session_id": session.events[0]["session_id"],
        "reason": "error",
    }
    assert session.ws.close_code == 1011
