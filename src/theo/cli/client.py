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


def auth_headers() -> dict[str, str]:
    """``Authorization: Bearer $THEO_API_KEY`` when the key is set, else nothing."""
    key = Settings().api_key
    return {"Authorization": f"Bearer {key}"} if key else {}


def unauthorized_hint() -> str:
    """What to do about a 401: set THEO_API_KEY, or check the one that was sent."""
    if Settings().api_key:
        return "The server rejected THEO_API_KEY; set it to one of the server's API keys."
    return "The server requires an API key; set THEO_API_KEY to one of its keys."


def error_message(response: httpx.Response) -> str:
    """The message of an OpenAI-shaped error body, or the raw status; a 401 says what to do."""
    try:
        body: Any = response.json()
        message = str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {response.status_code}: {response.text[:200]}"
    if response.status_code == 401:
        return f"{message} {unauthorized_hint()}"
    return message


def request(method: str, base_url: str, path: str, **kwargs: Any) -> httpx.Response:
    """Send one request; exits with a clear message when no server answers or it errors."""
    try:
        headers = {**auth_headers(), **kwargs.pop("headers", {})}
        response = httpx.request(method, f"{base_url}{path}", headers=headers, **kwargs)
    except httpx.ConnectError:
        fail(f"cannot reach the Theo server at {base_url}. Is `theo serve` running?")
    except httpx.TimeoutException:
        fail(f"the Theo server at {base_url} did not answer in time.")
    if response.status_code >= 400:
        fail(error_message(response))
    return response
