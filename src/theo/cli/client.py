"""HTTP helpers shared by the CLI commands that talk to a running server."""

from __future__ import annotations

from typing import Any, NoReturn

import click
import httpx

from theo.config import Settings

server_option = click.option(
    "--server",
    "server_url",
    default=None,
    help="Base URL of the Theo server (THEO_SERVER_URL, default http://127.0.0.1:8000).",
)


def resolve_base_url(server_url: str | None) -> str:
    """The URL given on the command line, or the one from settings."""
    return server_url.rstrip("/") if server_url else Settings().base_url


def fail(message: str) -> NoReturn:
    """Print an error to stderr and exit with status 1."""
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(1)


def error_message(response: httpx.Response) -> str:
    """The message of an OpenAI-shaped error body, or the raw status."""
    try:
        body: Any = response.json()
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"


def request(method: str, base_url: str, path: str, **kwargs: Any) -> httpx.Response:
    """Send one request; exits with a clear message when no server answers or it errors."""
    try:
        response = httpx.request(method, f"{base_url}{path}", **kwargs)
    except httpx.ConnectError:
        fail(f"cannot reach the Theo server at {base_url}. Is `theo serve` running?")
    except httpx.TimeoutException:
        fail(f"the Theo server at {base_url} did not answer in time.")
    if response.status_code >= 400:
        fail(error_message(response))
    return response
