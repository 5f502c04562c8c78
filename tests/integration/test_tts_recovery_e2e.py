"""A TTS worker that dies before its first audio: the client gets a 503, never a broken 200."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import KOKORO
from tests.helpers.server import RunningServer, start_server, wait_for
from theo.audio.decode import decode_audio

pytestmark = pytest.mark.e2e

_LONG_START = (
    "Far beyond the quiet and lonely northern mountains, there lived an old clockmaker "
    "who repaired every broken watch the villagers brought him without asking for money."
)


@pytest.fixture(scope="module")
def kokoro_server(
    tts_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server with Kokoro only, so killing its worker disturbs no other test."""
    models_dir = tmp_path_factory.mktemp("tts-crash-models")
    (models_dir / KOKORO).symlink_to(tts_home / "models" / KOKORO)
    running = start_server(
        tts_home,
        tmp_path_factory.mktemp("tts-crash-logs") / "serve.log",
        models_dir=models_dir,
        extra_env={"THEO_WORKER__RESTART_BACKOFF_S": "0.5"},
    )
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def _logged(server: RunningServer, event: str, request_id: str) -> bool:
    return any(
        f'"{event}"' in line and json.loads(line).get("request_id") == request_id
        for line in server.log_text().splitlines()
    )


def test_worker_killed_before_the_first_chunk_gives_503_then_speech_works_again(
    kokoro_server: RunningServer,
) -> None:
    request_id = f"crash-{time.monotonic_ns()}"
    answers: list[httpx.Response] = []

    def send() -> None:
        with kokoro_server.client(timeout=120) as client:
            answers.append(
                client.post(
                    "/v1/audio/speech",
                    json={"model": KOKORO, "input": _LONG_START, "response_format": "wav"},
                    headers={"x-request-id": request_id},
                )
            )

    # Frozen, the worker takes the request but can produce no audio before it is killed.
    pid = kokoro_server.worker(KOKORO)["pid"]
    os.kill(pid, signal.SIGSTOP)
    sender = threading.Thread(target=send)
    try:
        sender.start()
        wait_for(lambda: _logged(kokoro_server, "speech_requested", request_id), 30, "the request")
    finally:
        os.kill(pid, signal.SIGKILL)
    sender.join(120)

    (response,) = answers
    assert response.status_code == 503, response.text[:200]
    assert response.json()["error"]["code"] == "worker_crashed"
    assert response.headers["Retry-After"].isdigit()

    wait_for(
        lambda: (
            kokoro_server.worker(KOKORO)["restarts"] == 1
            and kokoro_server.worker(KOKORO)["state"] == "ready"
        ),
        60,
        "the worker to be restarted and ready",
    )
    with kokoro_server.client() as client:
        again = client.post(
            "/v1/audio/speech",
            json={"model": KOKORO, "input": "Back again.", "response_format": "wav"},
        )
    assert again.status_code == 200
    assert decode_audio(again.content).duration_s > 0.3
    assert "Exception in ASGI application" not in kokoro_server.log_text()


def test_worker_killed_mid_stream_cuts_the_audio_off_never_a_silently_short_file(
    kokoro_server: RunningServer,
) -> None:
    kokoro_server.wait_ready(60)
    restarts = kokoro_server.worker(KOKORO)["restarts"]
    text = " ".join(f"This is sentence number {n} of a long story." for n in range(1, 13))
    received = 0
    with (
        kokoro_server.client() as client,
        client.stream(
            "POST",
            "/v1/audio/speech",
            json={"model": KOKORO, "input": text, "response_format": "pcm"},
        ) as response,
    ):
        assert response.status_code == 200
        chunks = response.iter_raw()
        received += len(next(chunks))
        os.kill(kokoro_server.worker(KOKORO)["pid"], signal.SIGKILL)
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in chunks:
                received += len(chunk)
    assert 0 < received < 12 * 2 * 24_000 * 2  # far less than twelve sentences of audio
    wait_for(
        lambda: (
            kokoro_server.worker(KOKORO)["restarts"] == restarts + 1
            and kokoro_server.worker(KOKORO)["state"] == "ready"
        ),
        60,
        "the worker to be restarted and ready",
    )
    log = kokoro_server.log_text()
    assert log.count("speech_failed_mid_stream") == 1  # one line, no traceback after it
    assert "Exception in ASGI application" not in log
    assert "Traceback" not in log
