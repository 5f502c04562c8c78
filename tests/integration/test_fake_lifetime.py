"""Workers never outlive `theo serve`, and its shutdown is bounded (real server, fake engine).

The API process is SIGKILLed (as the OOM killer would) and its workers must go with it; a
server restarted on the same home must find none of the old ones; a shutdown with a
realtime session and a request stuck on a frozen worker must end within its bound.
Linux only: process states are read from ``/proc``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.helpers.fake import FAKE_STT, install_fake_stt, start_fake_server
from tests.helpers.realtime import pcm16_of, ws_url
from tests.helpers.server import FIXTURES, RunningServer, wait_for
from theo.cli.serve import shutdown_deadline_s
from theo.config import Settings

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads process states from /proc"
)

SCRIPT = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"
PAIR = {"THEO_WORKER__REPLICAS": "2"}
SHUTDOWN_TIMEOUT_S = 1
STOP_GRACE_S = 0.5
BOUNDED = {
    "THEO_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
    "THEO_WORKER__STOP_GRACE_S": str(STOP_GRACE_S),
}


def _status(pid: int) -> dict[str, str]:
    """``/proc/<pid>/status`` as a mapping; empty once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return raw.decode(errors="replace").split("\0")


def _running(pid: int) -> bool:
    """Whether ``pid`` is still a Theo worker that runs (a zombie has finished)."""
    state = _status(pid).get("State", "X")
    return state[0] not in "ZX" and "theo.engines.stt" in _cmdline(pid)


def _workers_of(home: Path) -> set[int]:
    """Every running worker process serving a model of ``home``."""
    models = str(home / "models")
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            args = _cmdline(int(entry.name))
            if "--model-dir" in args and args[args.index("--model-dir") + 1].startswith(models):
                found.add(int(entry.name))
    return {pid for pid in found if _running(pid)}


def _worker_pids(server: RunningServer) -> list[int]:
    return [w["pid"] for w in server.health()["workers"]]


def _start(home: Path, env: dict[str, str]) -> RunningServer:
    return start_fake_server(home, home / "serve.log", env)  # every worker ready


@pytest.fixture
def home(tmp_path: Path) -> Path:
    install_fake_stt(tmp_path, transcript=SCRIPT)
    return tmp_path


@dataclass(frozen=True)
class Killed:
    """A `theo serve` with two workers whose API process was SIGKILLed."""

    home: Path
    api: int
    exit_code: int | None
    workers: list[int]
    parents: dict[int, str]
    """Each worker's ``PPid`` and ``--parent-pid`` just before the kill."""


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> Killed:
    home = tmp_path_factory.mktemp("killed-home")
    install_fake_stt(home, transcript=SCRIPT)
    server = _start(home, PAIR)
    workers = _worker_pids(server)
    parents = {}
    for pid in workers:
        args = _cmdline(pid)
        parents[pid] = f"{_status(pid)['PPid']} {args[args.index('--parent-pid') + 1]}"
    server.process.kill()
    exit_code = server.process.wait(10)
    return Killed(home, server.process.pid, exit_code, workers, parents)


def test_workers_die_with_a_sigkilled_api_process(killed: Killed) -> None:
    assert killed.exit_code == -signal.SIGKILL
    assert len(set(killed.workers)) == 2
    assert killed.parents == {pid: f"{killed.api} {killed.api}" for pid in killed.workers}
    wait_for(
        lambda: not any(_running(pid) for pid in killed.workers), 5, "the orphaned workers gone"
    )
    assert _workers_of(killed.home) == set()


def test_a_server_restarted_after_a_sigkill_finds_no_stale_workers(killed: Killed) -> None:
    server = _start(killed.home, PAIR)
    try:
        health = server.health()
        assert health["status"] == "ok"
        new = _worker_pids(server)
        assert [w["state"] for w in health["workers"]] == ["ready", "ready"]
        assert [w["restarts"] for w in health["workers"]] == [0, 0]
        assert not set(new) & set(killed.workers)
        # The old generation is gone, not merely unlisted.
        assert _workers_of(killed.home) == set(new)
        with server.client() as client, (FIXTURES / "en_short.wav").open("rb") as clip:
            response = client.post(
                "/v1/audio/transcriptions", files={"file": clip}, data={"model": FAKE_STT}
            )
        assert response.status_code == 200, response.text
        assert response.json()["text"].split() == SCRIPT.split()[:8]
    finally:
        server.stop()
    assert server.process.returncode == -signal.SIGTERM
    assert _workers_of(killed.home) == set()


async def _stuck_then_signalled(server: RunningServer, sig: signal.Signals) -> dict[str, Any]:
    """A realtime session and a batch request stuck on a frozen worker, then ``sig``.

    Returns when the server process has exited: how long it took after ``sig``, the
    session's close code and what became of the batch request.
    """
    audio, _ = pcm16_of("en_short.wav")
    worker = _worker_pids(server)[0]
    async with (
        websockets.connect(ws_url(server.base_url, FAKE_STT), max_size=None) as ws,
        httpx.AsyncClient(base_url=server.base_url, timeout=60) as client,
    ):
        await ws.recv()  # session.created: the session is running
        os.kill(worker, signal.SIGSTOP)  # alive, answers nothing, ignores SIGTERM
        for start in range(0, len(audio), 640):  # 20 ms frames, then the client goes quiet
            await ws.send(audio[start : start + 640])
        batch = asyncio.ensure_future(
            client.post(
                "/v1/audio/transcriptions",
                files={"file": ("clip.wav", (FIXTURES / "en_short.wav").read_bytes())},
                data={"model": FAKE_STT},
            )
        )
        await asyncio.to_thread(
            wait_for,
            lambda: server.health()["workers"][0]["active_requests"] >= 1,
            10,
            "the batch request waiting on the frozen worker",
        )
        signalled = time.monotonic()
        server.process.send_signal(sig)
        await asyncio.to_thread(server.process.wait, 30)
        elapsed = time.monotonic() - signalled
        outcome: Any
        try:
            outcome = (await batch).status_code
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        try:
            await asyncio.wait_for(ws.recv(), 5)  # whatever the session still had to say
            await asyncio.wait_for(ws.wait_closed(), 5)
        except websockets.ConnectionClosed:
            pass
        return {"elapsed": elapsed, "close_code": ws.close_code, "batch": outcome}


@pytest.mark.parametrize(
    ("sig", "exit_code"), [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 0)]
)
def test_shutdown_with_a_stuck_session_and_request_is_bounded(
    home: Path, sig: signal.Signals, exit_code: int
) -> None:
    server = _start(home, BOUNDED)
    workers = _worker_pids(server)
    try:
        result = asyncio.run(_stuck_then_signalled(server, sig))
    finally:
        server.stop()
        for pid in workers:  # never leave a frozen process behind, whatever failed
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
    assert server.process.returncode == exit_code, server.log_text()[-3000:]
    # The stuck request held the graceful phase to its end, the frozen worker its grace;
    # the exit status says the shutdown finished rather than hit its deadline.
    graceful = SHUTDOWN_TIMEOUT_S + STOP_GRACE_S
    settings = Settings(
        shutdown_timeout_s=SHUTDOWN_TIMEOUT_S, worker={"stop_grace_s": STOP_GRACE_S}
    )
    deadline = shutdown_deadline_s(settings)
    assert graceful <= result["elapsed"] < deadline, result
    assert result["close_code"] == 1012  # "service restart": uvicorn closed the session
    assert result["batch"] != 200
    assert "timeout graceful shutdown exceeded" in server.log_text()
    assert not any(_running(pid) for pid in workers)
    assert _workers_of(home) == set()
