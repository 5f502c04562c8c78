"""API keys, Origin and Host checks of a real `theo serve`, through its public interface."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.conftest import TINY_EN, reference
from tests.helpers.realtime import ws_url
from tests.helpers.server import FIXTURES, RunningServer, start_server, theo_executable, wait_for
from tests.helpers.wer import wer

pytestmark = pytest.mark.e2e

KEYS = ("sk-test-1", "sk-test-2")
APP_ORIGIN = "http://app.example"
EVIL_ORIGIN = "http://evil.example"
CLIP = FIXTURES / "en_short.wav"


@pytest.fixture(scope="module")
def secured(theo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """`theo serve` with two API keys and one allowed browser origin."""
    running = start_server(
        theo_home,
        tmp_path_factory.mktemp("security-logs") / "serve.log",
        extra_env={"THEO_API_KEYS": ",".join(KEYS), "THEO_ALLOWED_ORIGINS": APP_ORIGIN},
    )
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _request(server: RunningServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    with server.client() as client:
        return client.request(method, path, **kwargs)


def _transcribe(server: RunningServer, headers: dict[str, str]) -> httpx.Response:
    with CLIP.open("rb") as handle:
        return _request(
            server,
            "POST",
            "/v1/audio/transcriptions",
            files={"file": (CLIP.name, handle)},
            data={"model": TINY_EN},
            headers=headers,
        )


def _assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {
        "error": {
            "message": response.json()["error"]["message"],
            "type": "invalid_request_error",
            "param": None,
            "code": code,
        }
    }


def _heard(text: str) -> bool:
    # tiny.en hears "ill disposed" as "old-sposed"; the rest of the clip must be there.
    return "young man" in text.lower() and wer(reference("en_short.txt"), text) <= 0.3


_ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v1/models", {}),
    ("GET", f"/v1/models/{TINY_EN}", {}),
    ("POST", "/v1/audio/transcriptions", {"files": {"file": ("a.wav", b"x")}}),
    ("POST", "/v1/audio/translations", {"files": {"file": ("a.wav", b"x")}}),
    ("POST", "/v1/audio/speech", {"json": {"model": "x", "input": "hi"}}),
    ("GET", "/v1/audio/voices", {}),
    ("GET", "/metrics", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), _ROUTES)
def test_every_route_needs_a_valid_key(
    secured: RunningServer, method: str, path: str, body: dict[str, Any]
) -> None:
    for headers in ({}, _bearer("wrong")):
        response = _request(secured, method, path, headers=headers, **body)
        _assert_refused(response, 401, "invalid_api_key")
        assert response.headers["www-authenticate"] == "Bearer"


def test_health_needs_no_key(secured: RunningServer) -> None:
    response = _request(secured, "GET", "/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_openai_sdk_works_with_a_key_and_fails_without(secured: RunningServer) -> None:
    client = openai.OpenAI(base_url=f"{secured.base_url}/v1", api_key=KEYS[0])
    with CLIP.open("rb") as handle:
        result = client.audio.transcriptions.create(model=TINY_EN, file=handle)
    assert _heard(result.text), result.text
    wrong = openai.OpenAI(base_url=f"{secured.base_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError), CLIP.open("rb") as handle:
        wrong.audio.transcriptions.create(model=TINY_EN, file=handle)


def _theo(*args: str, key: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "THEO_API_KEY"}
    if key is not None:
        env["THEO_API_KEY"] = key
    return subprocess.run(
        [theo_executable(), *args], env=env, capture_output=True, text=True, timeout=180
    )


@pytest.mark.parametrize("stream", [False, True], ids=["batch", "stream"])
def test_cli_sends_theo_api_key(secured: RunningServer, stream: bool) -> None:
    args = ["transcribe", str(CLIP), "--model", TINY_EN, "--server", secured.base_url]
    if stream:
        args.append("--stream")
    result = _theo(*args, key=KEYS[1])
    assert result.returncode == 0, result.stderr
    assert _heard(result.stdout), result.stdout
    refused = _theo(*args, key=None)
    assert refused.returncode == 1
    assert "THEO_API_KEY" in refused.stderr, refused.stderr
    wrong = _theo(*args, key="wrong")
    assert wrong.returncode == 1
    assert "THEO_API_KEY" in wrong.stderr, wrong.stderr


async def _session_created(url: str, **kwargs: Any) -> dict[str, Any]:
    async with websockets.connect(url, open_timeout=30, **kwargs) as ws:
        event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 30))
        return event


async def _ws_refusal(url: str, **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as refused:
        await _session_created(url, **kwargs)
    return refused.value.response.status_code


async def test_websocket_needs_a_key_by_header_subprotocol_or_query(
    secured: RunningServer,
) -> None:
    url = ws_url(secured.base_url, TINY_EN)
    assert await _ws_refusal(url) == 401
    assert await _ws_refusal(url, additional_headers=_bearer("wrong")) == 401
    ways: list[tuple[str, dict[str, Any]]] = [
        (url, {"additional_headers": _bearer(KEYS[0])}),
        (url, {"subprotocols": [f"theo-api-key.{KEYS[1]}"]}),
        (url, {"subprotocols": ["realtime", f"openai-insecure-api-key.{KEYS[0]}"]}),
        (f"{url}&api_key={KEYS[0]}", {}),
    ]
    for address, kwargs in ways:
        event = await _session_created(address, **kwargs)
        assert event["type"] == "session.created", event


async def test_a_foreign_origin_is_refused_and_the_allowed_one_gets_cors(
    secured: RunningServer,
) -> None:
    evil = _transcribe(secured, {**_bearer(KEYS[0]), "Origin": EVIL_ORIGIN})
    _assert_refused(evil, 403, "forbidden")
    url = ws_url(secured.base_url, TINY_EN)
    assert await _ws_refusal(url, origin=EVIL_ORIGIN, additional_headers=_bearer(KEYS[0])) == 403

    allowed = _transcribe(secured, {**_bearer(KEYS[0]), "Origin": APP_ORIGIN})
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == APP_ORIGIN
    assert _heard(allowed.json()["text"])
    event = await _session_created(url, origin=APP_ORIGIN, subprotocols=[f"theo-api-key.{KEYS[0]}"])
    assert event["type"] == "session.created"


def test_a_preflight_from_the_allowed_origin_needs_no_key(secured: RunningServer) -> None:
    response = _request(
        secured,
        "OPTIONS",
        "/v1/audio/transcriptions",
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "Origin" in response.headers["vary"]


def test_a_foreign_host_is_refused(secured: RunningServer) -> None:
    port = urlsplit(secured.base_url).port
    foreign = _request(
        secured, "GET", "/v1/models", headers={**_bearer(KEYS[0]), "Host": "evil.example"}
    )
    _assert_refused(foreign, 403, "forbidden")
    local = _request(
        secured, "GET", "/v1/models", headers={**_bearer(KEYS[0]), "Host": f"localhost:{port}"}
    )
    assert local.status_code == 200, local.text


async def test_keys_never_reach_the_log(secured: RunningServer) -> None:
    url = ws_url(secured.base_url, TINY_EN)
    ended = secured.log_text().count("session_ended")
    event = await _session_created(f"{url}&api_key={KEYS[1]}")
    assert event["type"] == "session.created"
    _request(secured, "GET", f"/v1/models?api_key={KEYS[1]}", headers=_bearer(KEYS[0]))
    # The server logs the WebSocket path with its query, and every request's path.
    wait_for(lambda: secured.log_text().count("session_ended") > ended, 30, "the session to end")
    log = secured.log_text()
    assert all(key not in log for key in KEYS)


def test_the_default_server_refuses_foreign_origins_and_hosts(server: RunningServer) -> None:
    _assert_refused(_transcribe(server, {"Origin": EVIL_ORIGIN}), 403, "forbidden")
    foreign = _request(server, "GET", "/v1/models", headers={"Host": "evil.example"})
    _assert_refused(foreign, 403, "forbidden")
    plain = _transcribe(server, {})
    assert plain.status_code == 200, plain.text
    assert _heard(plain.json()["text"])
