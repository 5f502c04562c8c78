"""WorkerManager.stop() is bounded, whatever the worker does, and takes its helpers along.

The worker here is a stand-in module that ignores SIGTERM and starts two children that
inherit its stdout: a helper in its process group (which must die with it) and one that
left for a session of its own, so the pipe the manager drains never reaches EOF. The stop
must still end after the grace period (SIGKILL) plus the drains' bound.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tests.helpers.server import wait_for
from theo.config import Settings
from theo.manifest import ModelManifest
from theo.registry.store import InstalledModel
from theo.types import ModelType, WorkerState
from theo.workers import manager as manager_module
from theo.workers.manager import WorkerManager

STOP_GRACE_S = 0.5

_STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
helper = subprocess.Popen(sleeper)
escaped = subprocess.Popen(sleeper, start_new_session=True)
print(f"children {helper.pid} {escaped.pid}", flush=True)
time.sleep(60)
"""


@pytest.fixture
def stubborn_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InstalledModel]:
    (tmp_path / "stubborn_worker.py").write_text(_STUBBORN)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setitem(manager_module._WORKER_MODULES, ModelType.STT, "stubborn_worker")
    manifest = ModelManifest.from_dict(
        {
            "name": "stubborn",
            "type": "stt",
            "engine": "fake",
            "capabilities": {"languages": ["en"], "translation": False},
        }
    )
    yield InstalledModel("stubborn", tmp_path, manifest)


def _children(logs: list[dict[str, object]]) -> tuple[int, int] | None:
    """The pids of the worker's helper and of its escaped child, once it has logged them."""
    for entry in logs:
        line = str(entry.get("line", ""))
        if line.startswith("children "):
            helper, escaped = line.split()[1:]
            return int(helper), int(escaped)
    return None


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for init to reap it has finished)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "State:\tZ" not in status


async def test_stop_ends_after_the_grace_even_if_sigterm_is_ignored_and_the_pipe_stays_open(
    stubborn_model: InstalledModel,
) -> None:
    settings = Settings(worker={"stop_grace_s": STOP_GRACE_S, "startup_timeout_s": 60.0})
    manager = WorkerManager(settings)
    children: tuple[int, int] | None = None
    with structlog.testing.capture_logs() as logs:
        await manager.start([stubborn_model])
        try:
            children = await asyncio.to_thread(
                wait_for, lambda: _children(logs), 30, "the worker's children started"
            )
            helper, escaped = children
            handle = manager.handles[0]
            process = handle.process
            assert process is not None
            loop = asyncio.get_running_loop()
            started = loop.time()
            await asyncio.wait_for(manager.stop(), 10)
            elapsed = loop.time() - started
            # The escaped child still holds the pipe, so its reader never saw EOF.
            assert _running(escaped)
            await asyncio.to_thread(wait_for, lambda: not _running(helper), 5, "the helper gone")
        finally:
            for pid in children or ():
                if _running(pid):
                    os.kill(pid, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL
    assert handle.state == WorkerState.STOPPED
    # The grace, then at most the drains' one-second bound (and a margin for a busy CI).
    assert STOP_GRACE_S <= elapsed < STOP_GRACE_S + 1.0 + 1.5, elapsed
    assert any(e["event"] == "worker_kill_after_grace" for e in logs)
