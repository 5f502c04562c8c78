"""`theo serve`'s shutdown deadline: armed by the first stop signal, ends a hung shutdown."""

from __future__ import annotations

import signal
import threading

import pytest
import uvicorn

from theo.cli.serve import (
    DEADLINE_EXIT_CODE,
    ShutdownDeadline,
    bounded_server,
    shutdown_deadline_s,
)
from theo.config import Settings


class _Exits:
    """Records the exit status instead of ending the test run."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


def test_an_armed_deadline_ends_the_process_and_says_why(
    capfd: pytest.CaptureFixture[str],
) -> None:
    exits = _Exits()
    deadline = ShutdownDeadline(0.05, exit_process=exits)
    deadline.arm()
    assert exits.called.wait(5)
    assert exits.codes == [DEADLINE_EXIT_CODE]
    assert "shutdown unfinished after 0.05 s" in capfd.readouterr().err


def test_a_second_signal_keeps_the_first_countdown_and_a_finished_shutdown_cancels_it() -> None:
    exits = _Exits()
    deadline = ShutdownDeadline(0.2, exit_process=exits)
    assert not deadline.armed
    deadline.arm()
    deadline.arm()
    assert deadline.armed
    deadline.cancel()
    assert not exits.called.wait(0.4)
    assert exits.codes == []


def test_the_deadline_covers_both_graceful_phases_plus_a_margin() -> None:
    settings = Settings(shutdown_timeout_s=3, worker={"stop_grace_s": 2.0})
    assert shutdown_deadline_s(settings) == 10.0
    assert Settings().shutdown_timeout_s == 10


def test_the_first_stop_signal_arms_the_deadline() -> None:
    exits = _Exits()
    deadline = ShutdownDeadline(60, exit_process=exits)

    async def app(scope: object, receive: object, send: object) -> None:
        """Never served."""

    server = bounded_server(uvicorn.Config(app, log_config=None), deadline)
    try:
        server.handle_exit(signal.SIGTERM, None)
        assert server.should_exit
        assert deadline.armed
    finally:
        deadline.cancel()
    assert exits.codes == []
