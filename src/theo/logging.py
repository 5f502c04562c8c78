"""structlog configuration: console lines for people, JSON lines for machines.

Two rules keep logging cheap and safe on the event loop:

- Lines are rendered by the caller but written by one background thread, so a slow or
  full stderr pipe never blocks the loop.
- Tracebacks are plain (never ``rich`` with local variables, which would copy request
  headers and bodies into the log), and an error that Theo has already logged is not
  logged a second time by uvicorn.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
from typing import Literal

import structlog

_LOGGED_MARK = "_theo_logged"
_FLUSH_TIMEOUT_S = 2.0


class _LineWriter:
    """Writes finished log lines to stderr from a daemon thread, in order."""

    def __init__(self) -> None:
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="theo-log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def write(self, line: str) -> None:
        """Queue one line (without its newline); returns at once."""
        self._lines.put(line)

    def close(self) -> None:
        """Write what is queued, then stop the thread (at interpreter exit)."""
        if self._thread.is_alive():
            self._lines.put(None)
            self._thread.join(_FLUSH_TIMEOUT_S)

    def _run(self) -> None:
        while (line := self._lines.get()) is not None:
            try:
                sys.stderr.write(line + "\n")
                if self._lines.empty():
                    sys.stderr.flush()
            except (OSError, ValueError):  # stderr closed: nothing left to write to
                return


class _QueuedLogger:
    """A structlog logger whose every level hands the rendered line to the writer."""

    def __init__(self, writer: _LineWriter) -> None:
        self._writer = writer

    def msg(self, message: str) -> None:
        """Queue one rendered line."""
        self._writer.write(message)

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


class _QueuedHandler(logging.Handler):
    """A stdlib handler (uvicorn, grpc, libraries) that formats here and writes later."""

    def __init__(self, writer: _LineWriter) -> None:
        super().__init__()
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        """Format the record and queue it."""
        try:
            self._writer.write(self.format(record))
        except Exception:  # a broken record must not take down the caller
            self.handleError(record)


class _SkipAlreadyLogged(logging.Filter):
    """Drops records whose exception Theo's own error handler has already logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or not is_logged(exc)


def mark_logged(exc: BaseException) -> BaseException:
    """Mark ``exc`` as logged, so a server that re-raises it does not log it again."""
    setattr(exc, _LOGGED_MARK, True)
    return exc


def is_logged(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from, was marked by :func:`mark_logged`.

    Starlette wraps an error raised after a response started in a ``RuntimeError``; the
    wrapper carries the logged error as its cause.
    """
    cause: BaseException | None = exc
    while cause is not None:
        if getattr(cause, _LOGGED_MARK, False):
            return True
        cause = cause.__cause__
    return False


_writer: _LineWriter | None = None


def _line_writer() -> _LineWriter:
    global _writer  # noqa: PLW0603 - one writer thread per process, created on first use
    if _writer is None:
        _writer = _LineWriter()
    return _writer


def configure_logging(fmt: Literal["console", "json"] = "console", level: str = "INFO") -> None:
    """Route structlog and stdlib logging to stderr in one format, written off the caller."""
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        numeric_level = logging.INFO
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    writer = _line_writer()
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=lambda *_args: _QueuedLogger(writer),
        cache_logger_on_first_use=False,
    )
    handler = _QueuedHandler(writer)
    handler.addFilter(_SkipAlreadyLogged())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric_level)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger bound to a component name."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(component=name)
    return logger
