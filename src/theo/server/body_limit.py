"""ASGI middleware that enforces the upload size limit without buffering the body.

A declared ``Content-Length`` over the limit is answered 413 before a byte is read;
a chunked body is counted as it streams and cut off once it passes the limit.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from theo.errors import FileTooLargeError
from theo.server.errors import error_body

_MULTIPART_OVERHEAD = 64 * 1024  # form fields and boundaries around the file


class BodyLimitMiddleware:
    """Reject request bodies larger than the configured upload limit on ``path_prefix``."""

    def __init__(self, app: ASGIApp, max_bytes: int, path_prefix: str = "/v1/audio/") -> None:
        self.app = app
        self.max_file_bytes = max_bytes
        self.max_body_bytes = max_bytes + _MULTIPART_OVERHEAD
        self.path_prefix = path_prefix

    def _message(self) -> str:
        limit_mb = self.max_file_bytes / (1024 * 1024)
        return f"The uploaded file exceeds the maximum size of {limit_mb:g} MB."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.path_prefix):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._reject(send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise FileTooLargeError(self._message())
            return message

        await self.app(scope, limited_receive, send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            error_body(self._message(), "invalid_request_error", "file_too_large", "file")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
