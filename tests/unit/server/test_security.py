"""Host, Origin, CORS and API-key checks of ``SecurityMiddleware`` (no models needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocket

from theo.config import Settings
from theo.server.app import create_app
from theo.server.security import (
    SecurityConfigError,
    SecurityMiddleware,
    SecurityPolicy,
    accepted_subprotocol,
    load_api_keys,
    split_host,
)

KEY = "sk-test-1"
OTHER_KEY = "sk-test-2"
BASE = "http://localhost:8000"
APP_ORIGIN = "http://app.example"
EVIL = "http://evil.example"


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "api_keys": "",
        "api_keys_file": None,
        "allowed_origins": "",
        "allowed_hosts": "",
        "metrics_public": False,
        "host": "127.0.0.1",
    }
    return Settings(**{**values, **overrides})


def _app(**overrides: Any) -> Starlette:
    async def answer(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "query": request.url.query})

    async def realtime(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol=accepted_subprotocol(websocket.scope))
        await websocket.send_json({"type": "session.created", "query": websocket.url.query})
        await websocket.close()

    policy = SecurityPolicy.from_settings(_settings(**overrides))
    return Starlette(
        routes=[
            Route("/health", answer),
            Route("/metrics", answer),
            Route("/v1/models", answer),
            Route("/v1/audio/transcriptions", answer, methods=["POST"]),
            WebSocketRoute("/v1/realtime", realtime),
        ],
        middleware=[Middleware(SecurityMiddleware, policy=policy)],
    )


def _client(**overrides: Any) -> TestClient:
    return TestClient(_app(**overrides), base_url=BASE)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["type"] == "invalid_request_error"
    assert error["param"] is None
    assert isinstance(error["message"], str) and error["message"]


def _ws(client: TestClient, path: str, **kwargs: Any) -> Any:
    # The test client sends Host: testserver unless the URL is absolute.
    return client.websocket_connect(f"ws://localhost:8000{path}", **kwargs)


def _ws_refused(client: TestClient, url: str, status: int, **kwargs: Any) -> Any:
    with pytest.raises(WebSocketDenialResponse) as refused, _ws(client, url, **kwargs):
        pass
    assert refused.value.status_code == status
    return refused.value


# --- API keys --------------------------------------------------------------------------


def test_keys_come_from_the_list_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# team keys\n\n  {OTHER_KEY}  \nsk-file\n{KEY}\n")
    keys = load_api_keys(_settings(api_keys=f" {KEY}, ,{OTHER_KEY}", api_keys_file=path))
    assert keys == (KEY, OTHER_KEY, "sk-file")


def test_a_key_with_whitespace_or_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("sk-1 # a trailing comment\n")
    with pytest.raises(SecurityConfigError, match="line 1"):
        load_api_keys(_settings(api_keys_file=path))
    with pytest.raises(SecurityConfigError, match="THEO_API_KEYS_FILE"):
        load_api_keys(_settings(api_keys_file=tmp_path / "missing"))
    with pytest.raises(SecurityConfigError, match="THEO_ALLOWED_ORIGINS"):
        SecurityPolicy.from_settings(_settings(allowed_origins="not an origin"))


def test_without_keys_nothing_needs_a_key() -> None:
    client = _client()
    assert client.get("/v1/models").status_code == 200
    assert client.post("/v1/audio/transcriptions").status_code == 200
    with _ws(client, "/v1/realtime") as ws:
        assert ws.receive_json()["type"] == "session.created"


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/models"), ("POST", "/v1/audio/transcriptions")]
)
def test_a_missing_or_wrong_key_gets_openai_401(method: str, path: str) -> None:
    client = _client(api_keys=f"{KEY},{OTHER_KEY}")
    for headers in ({}, _bearer("wrong"), {"Authorization": f"Basic {KEY}"}):
        response = client.request(method, path, headers=headers)
        _assert_error(response, 401, "invalid_api_key")
        assert response.headers["www-authenticate"] == "Bearer"
        assert "wrong" not in response.text
    for key in (KEY, OTHER_KEY):
        assert client.request(method, path, headers=_bearer(key)).status_code == 200
    lower_scheme = {"Authorization": f"bearer {KEY}"}
    assert client.request(method, path, headers=lower_scheme).status_code == 200


def test_health_is_public_and_metrics_only_when_configured() -> None:
    client = _client(api_keys=KEY)
    assert client.get("/health").status_code == 200
    _assert_error(client.post("/health"), 401, "invalid_api_key")
    _assert_error(client.get("/metrics"), 401, "invalid_api_key")
    assert _client(api_keys=KEY, metrics_public=True).get("/metrics").status_code == 200


def test_a_websocket_without_a_key_is_refused_with_401() -> None:
    client = _client(api_keys=KEY)
    refused = _ws_refused(client, "/v1/realtime", 401)
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert "theo-api-key" in refused.json()["error"]["message"]
    _ws_refused(client, "/v1/realtime", 401, headers=_bearer("wrong"))
    _ws_refused(client, "/v1/realtime", 401, subprotocols=["theo-api-key.wrong"])


def test_a_websocket_key_may_come_as_header_subprotocol_or_query() -> None:
    client = _client(api_keys=KEY)
    with _ws(client, "/v1/realtime", headers=_bearer(KEY)) as ws:
        assert ws.accepted_subprotocol is None
        assert ws.receive_json()["type"] == "session.created"
    with _ws(client, "/v1/realtime", subprotocols=[f"theo-api-key.{KEY}"]) as ws:
        assert ws.accepted_subprotocol == f"theo-api-key.{KEY}"
        assert ws.receive_json()["type"] == "session.created"
    openai_style = ["realtime", f"openai-insecure-api-key.{KEY}", "openai-beta.realtime-v1"]
    with _ws(client, "/v1/realtime", subprotocols=openai_style) as ws:
        assert ws.accepted_subprotocol == "realtime"
    with _ws(client, f"/v1/realtime?model=m&api_key={KEY}&x=1") as ws:
        # The key is taken out of the scope, so neither the route nor any log sees it.
        assert ws.receive_json()["query"] == "model=m&x=1"


def test_a_query_key_is_not_accepted_over_http_and_never_reaches_the_route() -> None:
    client = _client()
    assert client.get(f"/v1/models?api_key={KEY}&a=b").json()["query"] == "a=b"
    _assert_error(_client(api_keys=KEY).get(f"/v1/models?api_key={KEY}"), 401, "invalid_api_key")


# --- Origin and CORS -------------------------------------------------------------------


def test_a_foreign_origin_is_refused_and_no_origin_passes() -> None:
    client = _client()
    response = client.post("/v1/audio/transcriptions", headers={"Origin": EVIL})
    _assert_error(response, 403, "forbidden")
    assert "access-control-allow-origin" not in response.headers
    _ws_refused(client, "/v1/realtime", 403, headers={"Origin": EVIL})
    _assert_error(client.get("/v1/models", headers={"Origin": "null"}), 403, "forbidden")
    assert client.post("/v1/audio/transcriptions").status_code == 200


def test_same_origin_is_allowed() -> None:
    client = _client()
    for origin in (BASE, "http://LOCALHOST:8000"):
        assert client.get("/v1/models", headers={"Origin": origin}).status_code == 200
    with _ws(client, "/v1/realtime", headers={"Origin": BASE}) as ws:
        assert ws.receive_json()["type"] == "session.created"
    # Same host name on another port is another origin.
    response = client.get("/v1/models", headers={"Origin": "http://localhost:3000"})
    _assert_error(response, 403, "forbidden")


def test_an_allowed_origin_gets_cors_headers_even_on_401() -> None:
    client = _client(api_keys=KEY, allowed_origins=f"{APP_ORIGIN}, http://localhost:3000")
    headers = {"Origin": APP_ORIGIN, **_bearer(KEY)}
    response = client.post("/v1/audio/transcriptions", headers=headers)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "Origin" in response.headers["vary"]
    refused = client.post("/v1/audio/transcriptions", headers={"Origin": APP_ORIGIN})
    _assert_error(refused, 401, "invalid_api_key")
    # The browser script may read why it was refused.
    assert refused.headers["access-control-allow-origin"] == APP_ORIGIN
    with _ws(client, "/v1/realtime", headers=headers) as ws:
        assert ws.receive_json()["type"] == "session.created"
    _assert_error(client.get("/v1/models", headers={"Origin": EVIL}), 403, "forbidden")


def test_a_preflight_from_an_allowed_origin_needs_no_key() -> None:
    client = _client(api_keys=KEY, allowed_origins=APP_ORIGIN)
    response = client.options(
        "/v1/audio/transcriptions",
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, x-stainless-os, bad header!",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = [h.strip() for h in response.headers["access-control-allow-headers"].split(",")]
    assert {"authorization", "content-type", "x-stainless-os"} <= set(allowed)
    assert "bad header!" not in allowed
    assert int(response.headers["access-control-max-age"]) > 0
    assert "Origin" in response.headers["vary"]
    foreign = client.options(
        "/v1/models", headers={"Origin": EVIL, "Access-Control-Request-Method": "GET"}
    )
    _assert_error(foreign, 403, "forbidden")


def test_star_allows_any_origin() -> None:
    client = _client(allowed_origins="*")
    response = client.get("/v1/models", headers={"Origin": EVIL})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == EVIL


def test_a_refusal_quotes_only_a_short_excerpt_of_the_header() -> None:
    long_origin = "http://" + "a" * 5000 + ".example"
    response = _client().get("/v1/models", headers={"Origin": long_origin})
    _assert_error(response, 403, "forbidden")
    assert len(response.content) < 400


# --- Host ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["localhost:8000", "localhost", "127.0.0.1:8000", "[::1]:8000", "app.localhost:1"]
)
def test_local_hosts_are_answered(host: str) -> None:
    assert _client().get("/v1/models", headers={"Host": host}).status_code == 200


def test_a_foreign_host_is_refused_on_both_scopes() -> None:
    client = _client()
    response = client.get("/v1/models", headers={"Host": "evil.example:8000"})
    _assert_error(response, 403, "forbidden")
    assert "THEO_ALLOWED_HOSTS" in response.json()["error"]["message"]
    _ws_refused(client, "/v1/realtime", 403, headers={"Host": "evil.example"})
    # Not an IP literal when bound to loopback only.
    _assert_error(client.get("/", headers={"Host": "192.168.1.9"}), 403, "forbidden")


def test_a_wildcard_bind_answers_ip_literals_but_not_names() -> None:
    for bind in ("0.0.0.0", "::"):
        client = _client(host=bind)
        for host in ("192.168.1.9:8000", "[fe80::1]:8000", "10.0.0.1"):
            assert client.get("/v1/models", headers={"Host": host}).status_code == 200
        _assert_error(
            client.get("/v1/models", headers={"Host": "rebind.example"}), 403, "forbidden"
        )


def test_allowed_hosts_names_patterns_and_star() -> None:
    client = _client(host="myhost.lan", allowed_hosts="theo.example:9000, *.corp.example")
    for host in ("myhost.lan:8000", "theo.example", "a.corp.example", "THEO.EXAMPLE."):
        assert client.get("/v1/models", headers={"Host": host}).status_code == 200
    _assert_error(client.get("/v1/models", headers={"Host": "corp.example.evil"}), 403, "forbidden")
    assert _client(allowed_hosts="*").get("/", headers={"Host": "x.y"}).status_code == 404


async def test_a_request_without_host_passes_and_a_ws_falls_back_to_close_1008() -> None:
    app = _app(api_keys=KEY)
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "websocket.connect"}

    http_scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/health", "headers": [],
                  "query_string": b"", "http_version": "1.0", "scheme": "http",
                  "root_path": "", "server": None, "client": None}  # fmt: skip
    await app(http_scope, receive, send)
    assert sent[0]["status"] == 200
    sent.clear()
    # A server without the websocket.http.response extension gets a plain close.
    ws_scope: dict[str, Any] = {"type": "websocket", "path": "/v1/realtime", "headers": [],
                "query_string": b"", "subprotocols": [], "root_path": "", "scheme": "ws",
                "server": None, "client": None, "extensions": {}}  # fmt: skip
    await app(ws_scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_checks_run_host_then_origin_then_key() -> None:
    client = _client(api_keys=KEY)
    response = client.get("/v1/models", headers={"Host": "evil.example", "Origin": EVIL})
    assert "host" in response.json()["error"]["message"]
    response = client.get("/v1/models", headers={"Origin": EVIL})
    _assert_error(response, 403, "forbidden")
    assert "origin" in response.json()["error"]["message"]


def test_split_host() -> None:
    assert split_host("LocalHost:8000") == ("localhost", 8000)
    assert split_host("[::1]:80") == ("::1", 80)
    assert split_host("[::1]") == ("::1", None)
    assert split_host("::1") == ("::1", None)
    assert split_host("example.com.") == ("example.com", None)


# --- the real app ----------------------------------------------------------------------


async def test_the_real_app_enforces_the_policy(tmp_path: Path) -> None:
    app = create_app(_settings(home=tmp_path, api_keys=KEY))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        for path in ("/v1/models", "/metrics", "/v1/audio/voices"):
            _assert_error(await client.get(path), 401, "invalid_api_key")
        refused = await client.post("/v1/audio/transcriptions", headers={"Origin": EVIL})
        _assert_error(refused, 403, "forbidden")
        foreign = await client.get("/health", headers={"Host": "evil.example"})
        _assert_error(foreign, 403, "forbidden")
