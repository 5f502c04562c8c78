"""ParentWatch: a worker ends when the process that started it is gone.

The logic is tested with a scripted ``getppid``; the two mechanisms (the Linux parent-death
signal, the polling thread) each on real processes: a middle process starts a watcher and
is SIGKILLed, and the watcher must be gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.server import wait_for
from theo.engines.host import PARENT_GONE_EXIT_CODE, ParentWatch, set_parent_death_signal

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")


class _Parents:
    """A scripted ``os.getppid``: the parent until ``orphan()``, then init."""

    def __init__(self, parent: int) -> None:
        self.current = parent
        self.calls = 0

    def orphan(self) -> None:
        self.current = 1

    def __call__(self) -> int:
        self.calls += 1
        return self.current


def test_a_living_parent_is_watched_without_a_word() -> None:
    parents = _Parents(4242)
    gone = threading.Event()
    watch = ParentWatch(4242, interval_s=0.01, on_gone=gone.set, getppid=parents)
    watch.start(death_signal=False)
    try:
        assert watch.parent_alive()
        assert not gone.wait(0.1)
        assert parents.calls > 2  # it kept checking
    finally:
        watch.stop()


def test_a_parent_gone_later_is_noticed_by_the_thread() -> None:
    parents = _Parents(4242)
    gone = threading.Event()
    watch = ParentWatch(4242, interval_s=0.01, on_gone=gone.set, getppid=parents)
    watch.start(death_signal=False)
    try:
        parents.orphan()
        assert gone.wait(5)
        assert not watch.parent_alive()
    finally:
        watch.stop()


def test_a_parent_gone_before_the_start_is_noticed_at_once() -> None:
    """The race: the parent died between the fork and the parent-death signal."""
    parents = _Parents(4242)
    parents.orphan()
    calls: list[str] = []
    watch = ParentWatch(
        4242, interval_s=3600, on_gone=lambda: calls.append("gone"), getppid=parents
    )
    watch.start(death_signal=False)
    assert calls == ["gone"]
    watch.stop()  # no thread was started; stop still returns


@pytest.mark.skipif(sys.platform.startswith("linux"), reason="would bind the test runner")
def test_elsewhere_there_is_no_parent_death_signal_and_polling_alone_serves() -> None:
    assert set_parent_death_signal(signal.SIGKILL) is False


_WATCHER = """
import sys, time
from theo.engines.host import ParentWatch
parent, interval, death_signal = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "1"
ParentWatch(parent, interval_s=interval).start(death_signal=death_signal)
print("watching", flush=True)
time.sleep(120)
"""

_MIDDLE = """
import os, subprocess, sys
watcher = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid()), *sys.argv[2:]])
print(watcher.pid, flush=True)
watcher.wait()
"""


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for init to reap it has finished)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = next(line.split()[1] for line in status.splitlines() if line.startswith("State:"))
    return state not in ("Z", "X")


@pytest.fixture
def orphan_watcher(request: pytest.FixtureRequest) -> Iterator[int]:
    """A watcher whose parent was just SIGKILLed; yields the watcher's pid."""
    interval, death_signal = request.param
    middle = subprocess.Popen(
        [sys.executable, "-c", _MIDDLE, _WATCHER, str(interval), "1" if death_signal else "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert middle.stdout is not None
    watcher = int(middle.stdout.readline())
    try:
        assert middle.stdout.readline().strip() == "watching"
        middle.kill()
        middle.wait()
        yield watcher
    finally:
        middle.kill()
        middle.wait()
        middle.stdout.close()
        if _running(watcher):
            os.kill(watcher, signal.SIGKILL)


@linux_only
@pytest.mark.parametrize("orphan_watcher", [(3600.0, True)], indirect=True)
def test_the_kernel_kills_a_worker_whose_parent_was_sigkilled(orphan_watcher: int) -> None:
    # The thread checks once an hour: only the parent-death signal can end it this soon.
    wait_for(lambda: not _running(orphan_watcher), 3, "the orphan gone", interval=0.02)


@linux_only
@pytest.mark.parametrize("orphan_watcher", [(0.1, False)], indirect=True)
def test_the_polling_thread_ends_a_worker_whose_parent_was_sigkilled(orphan_watcher: int) -> None:
    # No parent-death signal: the portable fallback alone.
    wait_for(lambda: not _running(orphan_watcher), 3, "the orphan gone", interval=0.02)


def test_the_worker_entry_point_exits_when_its_parent_is_already_gone(tmp_path: Path) -> None:
    """``--parent-pid`` of a process that has exited: no engine is imported, no port bound."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    args = ["--model-dir", str(tmp_path), "--port", "1", "--parent-pid", str(gone.pid)]
    result = subprocess.run(
        [sys.executable, "-m", "theo.engines.stt", *args], capture_output=True, timeout=60
    )
    assert result.returncode == PARENT_GONE_EXIT_CODE, result.stderr.decode()
    assert b"worker_listening" not in result.stdout + result.stderr
