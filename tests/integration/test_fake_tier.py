"""Orchestration through a real `theo serve` in seconds: the scripted fake engine stands in
for the model, so routing, sessions, event order and crash recovery are tested without one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from tests.helpers.fake import (
    FAKE_STT,
    FAKE_TTS,
    install_fake_stt,
    install_fake_tts,
    serving_fake,
)
from tests.helpers.realtime import pcm16_of, run_session, ws_url
from tests.helpers.server import FIXTURES, RunningServer, wait_for

SCRIPT = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("fake-home")
    crash_file = home / "crash-next-decode"
    install_fake_stt(home, transcript=SCRIPT, words_per_second=3, crash_file=str(crash_file))
    install_fake_tts(home, seconds_per_char=0.05, synthesis_delay_s=0.2)
    # Probes twice a second, so a hung worker is found in about 2 s.
    with serving_fake(
        home,
        tmp_path_factory.mktemp("fake-logs") / "serve.log",
        extra_env={"THEO_WORKER__HEALTH_INTERVAL_S": "0.5", "THEO_WORKER__HEALTH_TIMEOUT_S": "0.5"},
    ) as server:
        yield server


def _crash_file(server: RunningServer) -> Path:
    return Path(server.env["THEO_HOME"]) / "crash-next-decode"


def test_batch_returns_the_scripted_words_for_the_clip_length(fake_server: RunningServer) -> None:
    with fake_server.client() as client, (FIXTURES / "en_short.wav").open("rb") as handle:
        response = client.post(
            "/v1/audio/transcriptions", files={"file": handle}, data={"model": FAKE_STT}
        )
    assert response.status_code == 200, response.text
    text = response.json()["text"]
    # en_short.wav lasts 2.99 s: 8 words at 3 words per second.
    assert text.split() == SCRIPT.split()[:8]


def test_realtime_events_come_in_order_with_append_only_partials(
    fake_server: RunningServer,
) -> None:
    audio, rate = pcm16_of("en_short.wav")
    log = asyncio.run(run_session(ws_url(fake_server.base_url, FAKE_STT), audio, rate, pace=2.0))
    types = log.types()
    assert types[0] == "session.created"
    assert types[-1] == "session.closed"
    start, final = types.index("vad.speech_start"), types.index("transcript.final")
    assert start < final < types.index("vad.speech_end")
    finals = log.finals()
    assert len(finals) == 1
    words = finals[0].split()
    assert words and words == SCRIPT.split()[: len(words)]
    partials = [e["text"] for e in log.of("transcript.partial")]
    assert partials, types
    for partial in partials:
        assert finals[0].startswith(partial), (partial, finals[0])


def test_a_worker_crash_mid_utterance_loses_and_repeats_nothing(
    fake_server: RunningServer,
) -> None:
    restarts = fake_server.worker(FAKE_STT)["restarts"]
    _crash_file(fake_server).touch()  # the next decode kills the worker
    audio, rate = pcm16_of("en_short.wav")
    log = asyncio.run(run_session(ws_url(fake_server.base_url, FAKE_STT), audio, rate, pace=2.0))
    crashes = [e for e in log.of("error") if e["code"] == "worker_crashed"]
    assert len(crashes) == 1
    assert crashes[0]["recoverable"] is True
    finals = log.finals()
    assert len(finals) == 1
    assert finals[0].split() == SCRIPT.split()[: len(finals[0].split())]
    assert len(finals[0].split()) >= 6
    assert not _crash_file(fake_server).exists()
    wait_for(
        lambda: (
            fake_server.worker(FAKE_STT)["restarts"] == restarts + 1
            and fake_server.worker(FAKE_STT)["state"] == "ready"
        ),
        30,
        "the worker restarted once",
    )


def test_a_session_without_speech_closes_at_its_init_timeout(fake_server: RunningServer) -> None:
    async def session() -> list[dict[str, object]]:
        url = ws_url(fake_server.base_url, FAKE_STT)
        events: list[dict[str, object]] = []
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "session.configure", "init_timeout_ms": 1000}))
            async for message in ws:
                events.append(json.loads(message))
        return events

    events = asyncio.run(asyncio.wait_for(session(), 30))
    assert [e["type"] for e in events] == ["session.created", "session.updated", "session.closed"]
    assert events[-1]["reason"] == "init_timeout"


def test_a_hung_worker_is_found_by_its_probes_killed_and_restarted(
    fake_server: RunningServer,
) -> None:
    worker = fake_server.worker(FAKE_STT)
    os.kill(worker["pid"], signal.SIGSTOP)  # alive, but answers nothing
    wait_for(
        lambda: (
            fake_server.worker(FAKE_STT)["pid"] != worker["pid"]
            and fake_server.worker(FAKE_STT)["state"] == "ready"
        ),
        30,
        "the hung worker replaced",
    )
    assert fake_server.worker(FAKE_STT)["restarts"] == worker["restarts"] + 1
    assert "stopped answering health probes" in fake_server.log_text()
    test_batch_returns_the_scripted_words_for_the_clip_length(fake_server)


@pytest.fixture(scope="module")
def fragile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("fragile-home")
    install_fake_stt(home, transcript=SCRIPT)
    with serving_fake(
        home,
        tmp_path_factory.mktemp("fragile-logs") / "serve.log",
        extra_env={"THEO_WORKER__MAX_RESTARTS": "1", "THEO_WORKER__RESTART_BACKOFF_S": "0.1"},
    ) as server:
        yield server


def test_the_restart_limit_gives_up_and_says_so(fragile_server: RunningServer) -> None:
    first = fragile_server.worker(FAKE_STT)
    os.kill(first["pid"], signal.SIGKILL)
    wait_for(
        lambda: (
            fragile_server.worker(FAKE_STT)["state"] == "ready"
            and fragile_server.worker(FAKE_STT)["pid"] != first["pid"]
        ),
        30,
        "the one restart allowed",
    )
    os.kill(fragile_server.worker(FAKE_STT)["pid"], signal.SIGKILL)
    wait_for(
        lambda: fragile_server.worker(FAKE_STT)["state"] == "crashed",
        30,
        "the worker left crashed",
    )
    health = fragile_server.health()
    assert health["status"] != "ok"
    assert fragile_server.worker(FAKE_STT)["restarts"] == 1
    with fragile_server.client() as client, (FIXTURES / "en_short.wav").open("rb") as handle:
        response = client.post(
            "/v1/audio/transcriptions", files={"file": handle}, data={"model": FAKE_STT}
        )
    assert response.status_code == 503
    assert response.headers["retry-after"]
    error = response.json()["error"]
    assert error["code"] == "model_unavailable"
    assert "unavailable" in error["message"]


def _tts_cancelled(server: RunningServer) -> float:
    with server.client() as client:
        text = client.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("theo_tts_requests_total{") and 'outcome="cancelled"' in line
    )


def test_speech_streams_piece_by_piece(fake_server: RunningServer) -> None:
    sentences = ["The first sentence is here.", "A second one follows.", "And a third."]
    chunks: list[bytes] = []
    with (
        fake_server.client() as client,
        client.stream(
            "POST",
            "/v1/audio/speech",
            json={"model": FAKE_TTS, "input": " ".join(sentences), "response_format": "pcm"},
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["x-sample-rate"] == "24000"  # OpenAI's pcm rate
        chunks.extend(response.iter_raw())
    audio_s = sum(len(c) for c in chunks) / 2 / 24_000
    spoken_s = sum(len(s) for s in sentences) * 0.05
    assert len(chunks) >= len(sentences)  # one piece at a time, not one block at the end
    assert spoken_s <= audio_s < spoken_s + 3.0  # every piece, plus the pauses between them


def test_a_client_leaving_mid_speech_cancels_it(fake_server: RunningServer) -> None:
    cancelled = _tts_cancelled(fake_server)
    text = " ".join(f"Sentence number {n} of a long text." for n in range(1, 40))
    with (
        fake_server.client() as client,
        client.stream(
            "POST",
            "/v1/audio/speech",
            json={"model": FAKE_TTS, "input": text, "response_format": "pcm"},
        ) as response,
    ):
        assert response.status_code == 200
        next(response.iter_raw())  # the first piece, then the client goes away
    wait_for(lambda: _tts_cancelled(fake_server) == cancelled + 1, 10, "the speech cancelled")
    wait_for(
        lambda: fake_server.worker(FAKE_TTS)["active_requests"] == 0, 10, "the worker idle again"
    )
