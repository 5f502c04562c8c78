"""ASGI middleware recording every request's count, duration and error status."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from theo.server.metrics import Metrics


class RequestMetricsMiddleware:
    """Label requests by route template (never by raw path, to bound cardinality)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    @staticmethod
    def _endpoint(scope: Scope) -> str:
        # The router records the matched route in the scope it was handed.
        route = scope.get("route")
        return str(getattr(route, "path", "unmatched"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            endpoint = self._endpoint(scope)
            self.metrics.request_done(
                endpoint, scope["method"], status, time.perf_counter() - start
            )
            if status >= 400:
                self.metrics.error(endpoint, str(status))
