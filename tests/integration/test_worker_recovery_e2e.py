"""Worker crashes: detected, reported in /health, restarted; requests fail clearly, then succeed."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TINY_EN
from tests.helpers.audio import repeated_clip
from tests.helpers.server import FIXTURES, RunningServer, start_server, wait_for
from theo.cores import available_cores

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def crash_server(
    theo_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server with only tiny.en and a 3 s restart backoff, so the restart window is visible."""
    models_dir = tmp_path_factory.mktemp("crash-models")
    (models_dir / TINY_EN).symlink_to(theo_home / "models" / TINY_EN)
    running = start_server(
        theo_home,
        tmp_path_factory.mktemp("crash-logs") / "serve.log",
        models_dir=models_dir,
        extra_env={"THEO_WORKER__RESTART_BACKOFF_S": "3"},
    )
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def _post(server: RunningServer, data: bytes) -> httpx.Response:
    with server.client() as client:
        return client.post(
            "/v1/audio/transcriptions",
            files={"file": ("clip.wav", data, "audio/wav")},
            data={"model": TINY_EN},
        )


def _kill_worker(server: RunningServer) -> int:
    pid = server.worker(TINY_EN)["pid"]
    os.kill(pid, signal.SIGKILL)
    return int(pid)


def test_idle_worker_killed_is_restarted(crash_server: RunningServer) -> None:
    before = crash_server.worker(TINY_EN)
    old_pid = _kill_worker(crash_server)
    seen = wait_for(
        lambda: (
            crash_server.worker(TINY_EN)["state"] in ("crashed", "starting")
            and crash_server.worker(TINY_EN)
        ),
        10,
        "the crash to show in /health",
    )
    assert crash_server.health()["status"] in ("degraded", "loading")
    assert seen["state"] in ("crashed", "starting")
    # While it restarts, requests get 503 with Retry-After.
    response = _post(crash_server, (FIXTURES / "en_short.wav").read_bytes())
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert response.json()["error"]["code"] == "model_unavailable"
    crash_server.wait_ready(60)
    after = crash_server.worker(TINY_EN)
    assert after["pid"] != old_pid
    assert after["restarts"] == before["restarts"] + 1
    response = _post(crash_server, (FIXTURES / "en_short.wav").read_bytes())
    assert response.status_code == 200
    assert "young man" in response.json()["text"]


def test_worker_killed_during_request(crash_server: RunningServer) -> None:
    crash_server.wait_ready(60)
    long_clip = repeated_clip(FIXTURES / "en_librivox.wav", 120)
    result: dict[str, httpx.Response] = {}
    thread = threading.Thread(target=lambda: result.setdefault("r", _post(crash_server, long_clip)))
    thread.start()
    wait_for(
        lambda: crash_server.worker(TINY_EN)["active_requests"] > 0, 30, "the worker to be busy"
    )
    old_pid = _kill_worker(crash_server)
    thread.join(60)
    response = result["r"]
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "worker_crashed"
    assert "Traceback" not in response.text
    # The cut call can be answered before the manager has seen the process exit, when
    # /health still shows the dead worker ready: wait for its successor.
    wait_for(
        lambda: (
            crash_server.worker(TINY_EN)["pid"] not in (None, old_pid)
            and crash_server.worker(TINY_EN)["state"] in ("ready", "busy")
        ),
        60,
        "the worker to be replaced",
    )
    crash_server.wait_ready(60)
    response = _post(crash_server, (FIXTURES / "en_short.wav").read_bytes())
    assert response.status_code == 200
    assert "young man" in response.json()["text"]


def test_client_disconnect_cancels_the_worker_call(crash_server: RunningServer) -> None:
    crash_server.wait_ready(60)
    long_clip = repeated_clip(FIXTURES / "en_librivox.wav", 150)
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.Client(base_url=crash_server.base_url, timeout=httpx.Timeout(60, read=2.0)) as client,
    ):
        client.post(
            "/v1/audio/transcriptions",
            files={"file": ("clip.wav", long_clip, "audio/wav")},
            data={"model": TINY_EN},
        )
    wait_for(
        lambda: "transcription_cancelled" in crash_server.log_text(),
        30,
        "the worker to log the cancellation",
    )
    assert "client_disconnected" in crash_server.log_text()
    # The next request, sent at once, does not wait for the cancelled one's last engine
    # call: with two engine lanes it starts on the other (the worker's own figure).
    done_before = len(crash_server.log_entries("transcription_done"))
    response = _post(crash_server, (FIXTURES / "en_short.wav").read_bytes())
    assert response.status_code == 200
    assert "young man" in response.json()["text"]
    done = wait_for(
        lambda: crash_server.log_entries("transcription_done")[done_before:], 30, "done"
    )
    print(f"the next request's first engine call {done[0]['started_after_ms']} ms after it came")
    if min(2, available_cores()) == 2:
        assert float(done[0]["started_after_ms"]) <= 100, done
    # The engine stopped at its next engine call (an encoder pass or a generation), long
    # before the 150 s clip was done, and said how long after the cancellation.
    stopped = wait_for(lambda: crash_server.log_entries("transcription_stopped"), 30, "stop")
    assert len(stopped) == 1 and stopped[0]["finished"] is False, stopped
    print(f"cancelled decode stopped {stopped[0]['stopped_after_ms']} ms after the disconnect")
    wait_for(lambda: crash_server.worker(TINY_EN)["active_requests"] == 0, 30, "worker idle")
