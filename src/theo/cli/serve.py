"""``theo serve``: run the API server and its workers.

Shutdown is bounded. On SIGTERM or Ctrl+C uvicorn stops accepting connections, closes
realtime sessions (close code 1012) and gives open requests ``shutdown_timeout_s`` to
finish before it cancels them; the app's lifespan then stops the workers (SIGTERM, SIGKILL
after ``worker.stop_grace_s``). Whatever still hangs after that (a task that ignores its
cancellation, a thread that cannot be cancelled) cannot keep the process alive: a
deadline armed by the first signal ends it. Its workers end with it (``--parent-pid``).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from theo.config import Settings
from theo.logging import configure_logging

if TYPE_CHECKING:
    import uvicorn

# After the graceful phases: cancelled handlers unwinding, channels closing, the last log
# lines of the workers; none of these should take more than a moment.
_DEADLINE_MARGIN_S = 5.0
DEADLINE_EXIT_CODE = 1
"""Exit status of a server whose shutdown overran its deadline."""
_STARTUP_FAILURE = 3  # uvicorn's own exit status when the server never started


class ShutdownDeadline:
    """Ends this process if its shutdown is still unfinished ``seconds`` after :meth:`arm`."""

    def __init__(self, seconds: float, exit_process: Callable[[int], Any] = os._exit) -> None:
        self.seconds = seconds
        self._exit_process = exit_process
        self._timer: threading.Timer | None = None

    @property
    def armed(self) -> bool:
        """Whether the countdown has started."""
        return self._timer is not None

    def arm(self) -> None:
        """Start the countdown; later calls (a second Ctrl+C) keep the first one."""
        if self._timer is None:
            self._timer = threading.Timer(self.seconds, self._expire)
            self._timer.daemon = True  # a finished shutdown must not wait for it
            self._timer.start()

    def cancel(self) -> None:
        """Stop the countdown."""
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        # Written straight to stderr: the log writer is a thread that os._exit would not
        # wait for, and this line says why the process ended.
        line = f"theo serve: shutdown unfinished after {self.seconds:g} s; exiting now\n"
        with contextlib.suppress(OSError):
            os.write(2, line.encode())
        self._exit_process(DEADLINE_EXIT_CODE)


def shutdown_deadline_s(settings: Settings) -> float:
    """How long after the first stop signal the process ends at the latest."""
    return settings.shutdown_timeout_s + settings.worker.stop_grace_s + _DEADLINE_MARGIN_S


def bounded_server(config: uvicorn.Config, deadline: ShutdownDeadline) -> uvicorn.Server:
    """A uvicorn server whose first SIGTERM or SIGINT also arms ``deadline``."""
    import uvicorn  # noqa: PLC0415 - keeps `theo --help` and client commands fast

    class BoundedServer(uvicorn.Server):
        """uvicorn's server, whose first stop signal also arms ``deadline``."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            deadline.arm()

    return BoundedServer(config)


def run_server(settings: Settings) -> None:
    """Start uvicorn with the Theo app; returns when the server stops."""
    import uvicorn  # noqa: PLC0415 - keeps `theo --help` and client commands fast

    from theo.server.app import create_app  # noqa: PLC0415 - same reason
    from theo.server.security import SecurityConfigError  # noqa: PLC0415 - same reason

    configure_logging(settings.log_format, settings.log_level)
    try:
        app = create_app(settings)
    except SecurityConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
        ws_ping_interval=10.0,
    )
    deadline = ShutdownDeadline(shutdown_deadline_s(settings))
    server = bounded_server(config, deadline)
    # What uvicorn.run does around Server.run, without its reload and multi-process modes.
    # The deadline stays armed until the process is gone: interpreter exit waits for
    # threads too.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise SystemExit(_STARTUP_FAILURE)


@click.command("serve")
@click.option("--host", default=None, help="Bind address (THEO_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (THEO_PORT, default 8000).")
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory of installed models (THEO_MODELS_DIR, default $THEO_HOME/models).",
)
@click.option("--log-format", type=click.Choice(["console", "json"]), default=None)
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR.")
@click.option(
    "--rtp-port",
    type=click.IntRange(0, 65_535),
    default=None,
    help="Receive phone calls as RTP over UDP on this port (THEO_TELEPHONY__RTP_PORT).",
)
@click.option(
    "--audiosocket-port",
    type=click.IntRange(0, 65_535),
    default=None,
    help="Receive phone calls from Asterisk AudioSocket on this TCP port "
    "(THEO_TELEPHONY__AUDIOSOCKET_PORT).",
)
def serve_cmd(
    host: str | None,
    port: int | None,
    models_dir: Path | None,
    log_format: str | None,
    log_level: str | None,
    rtp_port: int | None,
    audiosocket_port: int | None,
) -> None:
    """Serve every installed model over the OpenAI-compatible API."""
    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "models_dir": models_dir,
        "log_format": log_format,
        "log_level": log_level,
    }
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    ports = {"rtp_port": rtp_port, "audiosocket_port": audiosocket_port}
    chosen = {k: v for k, v in ports.items() if v is not None}
    if chosen:
        settings.telephony = settings.telephony.model_copy(update=chosen)
    run_server(settings)
