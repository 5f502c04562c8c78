"""Log lines are written off the caller's thread, tracebacks are plain, and errors that
Theo already logged are not logged again by the server."""

from __future__ import annotations

import io
import logging
import threading
import time

import pytest

import theo.logging as theo_logging
from theo.logging import configure_logging, get_logger, is_logged, mark_logged


def _written(capsys: pytest.CaptureFixture[str]) -> str:
    """What the writer thread wrote to stderr, once every queued line is out."""
    writer = theo_logging._writer
    assert writer is not None
    writer.write("--end--")  # lines leave in order: once this is out, so is the rest
    output = io.StringIO()
    deadline = time.monotonic() + 5
    while "--end--" not in output.getvalue() and time.monotonic() < deadline:
        output.write(capsys.readouterr().err)
        time.sleep(0.01)
    return output.getvalue()


def test_tracebacks_are_plain_without_local_variables(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("console", "INFO")
    secret = "Bearer sk-should-not-appear"  # a local variable a rich traceback would print

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        get_logger("test").exception("failed")
    output = _written(capsys)
    assert "RuntimeError: boom" in output
    assert "Traceback" in output
    assert secret not in output
    assert "sk-should-not-appear" not in output


def test_an_error_already_logged_is_not_logged_again(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "INFO")
    server_log = logging.getLogger("uvicorn.error")
    logged = mark_logged(RuntimeError("logged by theo"))
    fresh = RuntimeError("not logged yet")
    for exc in (logged, fresh):
        server_log.error("Exception in ASGI application", exc_info=(type(exc), exc, None))
    output = _written(capsys)
    assert "not logged yet" in output
    assert "logged by theo" not in output


def test_writing_does_not_happen_on_the_calling_thread() -> None:
    configure_logging("json", "INFO")
    writer = theo_logging._writer
    assert writer is not None
    assert writer._thread.is_alive()
    assert writer._thread is not threading.current_thread()


def test_a_wrapper_of_a_logged_error_counts_as_logged() -> None:
    logged = mark_logged(ValueError("already logged"))
    try:
        raise RuntimeError("response already started") from logged
    except RuntimeError as wrapper:
        assert is_logged(wrapper)
    assert not is_logged(RuntimeError("fresh"))
