"""ASGI middleware that bounds request bodies in size and in time, without buffering them.

A declared ``Content-Length`` over the limit is answered 413 before a byte is read;
a chunked body is counted as it streams and cut off once it passes the limit. A client
that stops sending in the middle of a body for longer than the read timeout gets 408.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from theo.errors import BodyReadTimeoutError, FileTooLargeError
from theo.server.errors import error_body

_MULTIPART_OVERHEAD = 64 * 1024  # form fields and boundaries around the file


class BodyLimitMiddleware:
    """Reject bodies over the upload limit on ``path_prefix`` and bodies that stall anywhere.

    Args:
        app: the wrapped application.
        max_bytes: the largest uploaded file accepted under ``path_prefix``.
        read_timeout_s: the longest wait for the next piece of an unfinished body.
        path_prefix: the routes the size limit applies to.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        read_timeout_s: float,
        path_prefix: str = "/v1/audio/",
    ) -> None:
        self.app = app
        self.max_file_bytes = max_bytes
        self.max_body_bytes = max_bytes + _MULTIPART_OVERHEAD
        self.read_timeout_s = read_timeout_s
        self.path_prefix = path_prefix

    def _message(self) -> str:
        limit_mb = self.max_file_bytes / (1024 * 1024)
        return f"The uploaded file exceeds the maximum size of {limit_mb:g} MB."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limited = scope["path"].startswith(self.path_prefix)
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if (
            limited
            and declared is not None
            and declared.isdigit()
            and int(declared) > self.max_body_bytes
        ):
            await self._reject(send)
            return
        received = 0
        body_complete = False

        async def guarded_receive() -> Message:
            nonlocal received, body_complete
            if body_complete:
                # Only the disconnect notice is left: waiting for it may take as long as
                # the response does (a streamed answer), so no timeout applies.
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout_s)
            except TimeoutError:
                raise BodyReadTimeoutError(
                    f"The request body stalled: nothing arrived for {self.read_timeout_s:g} s "
                    "(THEO_BODY_READ_TIMEOUT_S)."
                ) from None
            if message["type"] != "http.request":
                body_complete = True
                return message
            body_complete = not message.get("more_body", False)
            received += len(message.get("body", b""))
            if limited and received > self.max_body_bytes:
                raise FileTooLargeError(self._message())
            return message

        await self.app(scope, guarded_receive, send)

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
