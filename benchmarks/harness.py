"""Shared pieces of the benchmark scripts: a real `theo serve` subprocess and small helpers.

Imported as ``harness`` by scripts run from the repository root
(``.venv/bin/python benchmarks/NAME.py``), whose directory is first on ``sys.path``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

# One word error rate for tests and benchmarks: the repository root makes ``tests`` importable
# when a script runs from ``benchmarks/``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers.wer import normalize, wer

__all__ = ["normalize", "wer"]


def log(message: str) -> None:
    """Progress to stderr, so the result tables on stdout stay clean."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def theo_command() -> list[str]:
    """The ``theo`` CLI of this interpreter's environment, falling back to ``PATH``."""
    candidate = Path(sys.executable).parent / "theo"
    if candidate.exists():
        return [str(candidate)]
    found = shutil.which("theo")
    if found:
        return [found]
    return [sys.executable, "-c", "from theo.cli.main import cli; cli()"]


def percentile(values: list[float], fraction: float) -> float:
    """Linear-interpolated percentile (``fraction`` in [0, 1]) of a non-empty list."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ensure_model(home: Path, model: str, log_file: IO[str]) -> Path:
    """Return ``<home>/models/<model>``, running ``theo pull`` first if it is not there."""
    model_dir = home / "models" / model
    if (model_dir / "theo.yaml").exists():
        log(f"using installed model at {model_dir}")
        return model_dir
    log(f"theo pull {model} (THEO_HOME={home}) ...")
    env = {**os.environ, "THEO_HOME": str(home)}
    env.pop("THEO_MODELS_DIR", None)
    started = time.perf_counter()
    result = subprocess.run(
        [*theo_command(), "pull", model],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        check=False,
    )
    log_file.flush()
    if result.returncode != 0 or not (model_dir / "theo.yaml").exists():
        raise RuntimeError(f"theo pull {model} failed (exit {result.returncode}); see the log")
    log(f"pulled in {time.perf_counter() - started:.1f} s")
    return model_dir


@dataclass
class TheoServer:
    """``theo serve`` as a subprocess; output goes to a log file, never to an unread pipe."""

    home: Path
    models_dir: Path
    log_file: IO[str]
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "THEO_HOME": str(self.home), **self.extra_env}
        for name in ("THEO_MODELS_DIR", "THEO_HOST", "THEO_PORT", "THEO_SERVER_URL"):
            env.pop(name, None)
        command = [
            *theo_command(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--models-dir",
            str(self.models_dir),
        ]
        log(f"starting: {' '.join(command)}")
        self.process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float) -> dict[str, Any]:
        """Poll ``GET /health`` until ``status == "ok"``; raise on exit or deadline."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        last: object = "no answer"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"theo serve exited with code {self.process.returncode}")
                try:
                    response = client.get(f"{self.base_url}/health")
                    body: dict[str, Any] = response.json()
                    if response.status_code == 200 and body.get("status") == "ok":
                        return body
                    last = body
                except (httpx.HTTPError, ValueError) as exc:
                    last = exc
                time.sleep(0.25)
        raise TimeoutError(f"theo serve not healthy after {timeout_s:.0f} s (last: {last!r})")

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM the server (it stops its workers), then wait; SIGKILL past the grace."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        log("stopping theo serve (SIGTERM)")
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            log("theo serve ignored SIGTERM; killing its process group")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
