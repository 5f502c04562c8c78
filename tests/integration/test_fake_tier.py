"""Orchestration through a real `theo serve` in seconds: the scripted fake engine stands in
for the model, so routing, sessions, event order and crash recovery are tested without one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.fake import FAKE_STT, install_fake_stt, start_fake_server
from tests.helpers.realtime import pcm16_of, run_session, ws_url
from tests.helpers.server import FIXTURES, RunningServer, wait_for

SCRIPT = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("fake-home")
    crash_file = home / "crash-next-decode"
    install_fake_stt(home, transcript=SCRIPT, words_per_second=3, crash_file=str(crash_file))
    server = start_fake_server(home, tmp_path_factory.mktemp("fake-logs") / "serve.log")
    try:
        yield server
    finally:
        server.stop()


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
