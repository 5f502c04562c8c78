"""``theo serve``: run the API server and its workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from theo.config import Settings
from theo.logging import configure_logging


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
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=10,
        ws_ping_interval=10.0,
    )


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
def serve_cmd(
    host: str | None,
    port: int | None,
    models_dir: Path | None,
    log_format: str | None,
    log_level: str | None,
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
    run_server(settings)
