"""ASGI middleware recording every request's count, duration and error status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from theo.server.errors import CLIENT_CLOSED_REQUEST
from theo.server.metrics import Metrics


class RequestMetricsMiddleware:
    """Label requests by route template (never by raw path, to bound cardinality)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = tuple(routes)
        """The app's routes, to label requests that middleware answered before routing."""

    def _endpoint(self, scope: Scope) -> str:
        # The router records the matched route in the scope it was handed; a request that
        # a middleware answered (413, 401, 403) never reached it, so match it here.
        route = scope.get("route")
        if route is not None:
            return str(getattr(route, "path", "unmatched"))
        for candidate in self.routes:
            match, _ = candidate.matches(scope)
            if match != Match.NONE:
                return str(getattr(candidate, "path", "unmatched"))
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False

        async def send_with_status(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except (ClientDisconnect, asyncio.CancelledError):
            if not started:
                status = CLIENT_CLOSED_REQUEST
            raise
        finally:
            endpoint = self._endpoint(scope)
            self.metrics.request_done(
                endpoint, scope["method"], status, time.perf_counter() - start
            )
            if status >= 400:
                code = "client_closed" if status == CLIENT_CLOSED_REQUEST else str(status)
                self.metrics.error(endpoint, code)
