"""The ASGI middleware that applies the security policy to HTTP requests and WebSockets."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from theo.logging import get_logger
from theo.server.errors import error_body
from theo.server.security.policy import (
    KEY_QUERY_PARAM,
    KEY_SUBPROTOCOL_PREFIXES,
    REALTIME_SUBPROTOCOL,
    SecurityPolicy,
    excerpt,
)

log = get_logger("server.security")

_ALLOW_METHODS = "GET, POST, OPTIONS"
_BASE_ALLOW_HEADERS = ("Authorization", "Content-Type")
# Custom response headers a browser script may read (speech sample rate, request ids).
_EXPOSE_HEADERS = "X-Sample-Rate, X-Request-Id, Retry-After"
_PREFLIGHT_MAX_AGE_S = "600"
_CLOSE_POLICY_VIOLATION = 1008


def accepted_subprotocol(scope: Scope) -> str | None:
    """The subprotocol to select when accepting a WebSocket.

    Browsers fail a handshake whose answer selects none of the subprotocols they offered,
    so a client that passed its key as a subprotocol must get one back: ``realtime`` when
    offered (OpenAI's clients), else the key subprotocol itself.

    Args:
        scope: the WebSocket's ASGI scope.
    """
    offered = [str(p) for p in scope.get("subprotocols") or ()]
    if REALTIME_SUBPROTOCOL in offered:
        return REALTIME_SUBPROTOCOL
    return next((p for p in offered if p.startswith(KEY_SUBPROTOCOL_PREFIXES)), None)


def _headers(scope: Scope) -> dict[str, str]:
    # Latin-1 keeps every byte; repeated headers keep the first value, like browsers send.
    found: dict[str, str] = {}
    for name, value in scope.get("headers") or ():
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found


def _strip_query_key(scope: Scope) -> list[str]:
    """Remove ``api_key`` from the query string in place; returns the values removed.

    The scope is the very dict the server logs from, so the key never reaches uvicorn's
    access or WebSocket log lines, nor the route.
    """
    raw: bytes = scope.get("query_string") or b""
    if KEY_QUERY_PARAM.encode() not in raw:
        return []
    kept: list[bytes] = []
    removed: list[str] = []
    for pair in raw.split(b"&"):
        name, _, value = pair.partition(b"=")
        if unquote_plus(name.decode("latin-1")) == KEY_QUERY_PARAM:
            removed.append(unquote_plus(value.decode("latin-1")))
        else:
            kept.append(pair)
    scope["query_string"] = b"&".join(kept)
    return removed


def _bearer(headers: dict[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _key_candidates(scope: Scope, headers: dict[str, str], query_keys: list[str]) -> list[str]:
    candidates = [key for key in [_bearer(headers)] if key]
    if scope["type"] == "websocket":
        for protocol in scope.get("subprotocols") or ():
            for prefix in KEY_SUBPROTOCOL_PREFIXES:
                if str(protocol).startswith(prefix):
                    candidates.append(str(protocol)[len(prefix) :])
        candidates.extend(query_keys)
    return candidates


@dataclass(frozen=True, slots=True)
class _Refusal:
    status: int
    code: str
    message: str
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def body(self) -> bytes:
        return json.dumps(error_body(self.message, "invalid_request_error", self.code)).encode()


class SecurityMiddleware:
    """Raw ASGI middleware enforcing a :class:`SecurityPolicy` on HTTP and WebSocket scopes.

    Refusals are OpenAI-shaped JSON: 403 ``forbidden`` for a foreign Host or Origin, 401
    ``invalid_api_key`` (with ``WWW-Authenticate: Bearer``) for a missing or wrong key. A
    refused WebSocket gets the same answer as an HTTP response when the server supports
    the ``websocket.http.response`` extension, else a close with code 1008 before accept.
    """

    def __init__(self, app: ASGIApp, policy: SecurityPolicy) -> None:
        self.app = app
        self.policy = policy
        log.info(
            "security_policy",
            api_keys=len(policy.api_keys),  # how many, never which
            allowed_origins="*" if policy.any_origin else len(policy.allowed_origins),
            allowed_hosts="*" if policy.any_host else sorted(policy.allowed_hosts),
        )
        if policy.any_ip_host and not policy.auth_required:
            log.warning(
                "no_api_keys_on_network_bind",
                hint="the server is reachable from the network; set THEO_API_KEYS",
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        query_keys = _strip_query_key(scope)
        headers = _headers(scope)
        host = headers.get("host")
        origin = headers.get("origin")
        refusal: _Refusal | None = None
        if host is not None and not self.policy.host_allowed(host):
            refusal = _Refusal(
                403,
                "forbidden",
                f"Requests for host '{excerpt(host)}' are not allowed; add the name to "
                "THEO_ALLOWED_HOSTS.",
            )
        elif origin is not None and not self.policy.origin_allowed(origin, host):
            refusal = _Refusal(
                403,
                "forbidden",
                f"Requests from origin '{excerpt(origin)}' are not allowed; add it to "
                "THEO_ALLOWED_ORIGINS.",
            )
        if refusal is not None:
            log.info("request_refused", reason="host_or_origin", path=excerpt(scope["path"]))
            await self._refuse(scope, receive, send, refusal, cors_origin=None)
            return
        # Only an allowed origin reaches this point; it gets CORS headers on every answer.
        cors_origin = origin
        if scope["type"] == "http" and origin is not None and _is_preflight(scope, headers):
            await _answer_preflight(send, origin, headers)
            return
        if self._needs_key(scope):
            candidates = _key_candidates(scope, headers, query_keys)
            if not any(self.policy.key_valid(c) for c in candidates):
                refusal = _unauthorized(scope, bool(candidates))
                log.info("request_refused", reason="api_key", path=excerpt(scope["path"]))
                await self._refuse(scope, receive, send, refusal, cors_origin)
                return
        if scope["type"] == "http" and cors_origin is not None:
            send = _with_cors(send, cors_origin)
        await self.app(scope, receive, send)

    def _needs_key(self, scope: Scope) -> bool:
        if not self.policy.auth_required:
            return False
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return True
        path = _route_path(scope)
        return not (path == "/health" or (path == "/metrics" and self.policy.metrics_public))

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, refusal: _Refusal, cors_origin: str | None
    ) -> None:
        body = refusal.body()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *refusal.headers,
            *(_cors_headers(cors_origin) if cors_origin is not None else ()),
        ]
        if scope["type"] == "http":
            await send(
                {"type": "http.response.start", "status": refusal.status, "headers": headers}
            )
            await send({"type": "http.response.body", "body": body})
            return
        # The handshake is answered once the server has passed on the client's request.
        if (await receive())["type"] != "websocket.connect":
            return
        if "websocket.http.response" in (scope.get("extensions") or {}):
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": refusal.status,
                    "headers": headers,
                }
            )
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": _CLOSE_POLICY_VIOLATION})


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path") or ""
    return path[len(root) :] if root and path.startswith(root) else path


def _unauthorized(scope: Scope, key_given: bool) -> _Refusal:
    if key_given:
        message = "Invalid API key."
    else:
        message = "Missing API key; send it as 'Authorization: Bearer <key>'."
        if scope["type"] == "websocket":
            message += (
                " Browsers may pass it as the subprotocol 'theo-api-key.<key>' or as the "
                "query parameter 'api_key'."
            )
    return _Refusal(401, "invalid_api_key", message, ((b"www-authenticate", b"Bearer"),))


def _is_preflight(scope: Scope, headers: dict[str, str]) -> bool:
    return scope["method"] == "OPTIONS" and "access-control-request-method" in headers


def _cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-expose-headers", _EXPOSE_HEADERS.encode()),
        (b"vary", b"Origin"),
    ]


def _requested_headers(value: str) -> Iterable[str]:
    # Echo only well-formed header names: the origin is trusted, the value still is input.
    for item in value.split(","):
        name = item.strip()
        if name and len(name) <= 64 and all(c.isalnum() or c in "-_" for c in name):
            yield name


async def _answer_preflight(send: Send, origin: str, headers: dict[str, str]) -> None:
    allow = dict.fromkeys(h.lower() for h in _BASE_ALLOW_HEADERS)
    allow.update(
        dict.fromkeys(
            h.lower() for h in _requested_headers(headers.get("access-control-request-headers", ""))
        )
    )
    response_headers = [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-methods", _ALLOW_METHODS.encode()),
        (b"access-control-allow-headers", ", ".join(allow).encode()),
        (b"access-control-max-age", _PREFLIGHT_MAX_AGE_S.encode()),
        (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": response_headers})
    await send({"type": "http.response.body", "body": b""})


def _with_cors(send: Send, origin: str) -> Send:
    async def send_with_cors(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers: list[Any] = list(message.get("headers") or [])
            present = {bytes(name).lower() for name, _ in headers}
            # A second Vary line is legal and merges with the route's own.
            headers.extend(
                h for h in _cors_headers(origin) if h[0] == b"vary" or h[0] not in present
            )
            message = {**message, "headers": headers}
        await send(message)

    return send_with_cors
