"""Domain errors mapped to HTTP answers in OpenAI's shape. This is the only place that does it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from theo.errors import (
    AudioTooLongError,
    AuthenticationError,
    BodyReadTimeoutError,
    FileTooLargeError,
    ForbiddenOriginError,
    InferenceError,
    InvalidRequestError,
    ModelNotFoundError,
    ModelUnavailableError,
    TheoError,
    WorkerCrashError,
    WorkerTimeoutError,
)
from theo.logging import get_logger, is_logged, mark_logged

log = get_logger("server.errors")

CLIENT_CLOSED_REQUEST = 499
"""Status recorded (never sent) when the client went away before the answer: nginx's code."""
_MAX_MESSAGE_CHARS = 300

# (status, OpenAI error type, code) per domain error; the most specific class wins.
_ERROR_TABLE: list[tuple[type[TheoError], int, str, str]] = [
    (FileTooLargeError, 413, "invalid_request_error", "file_too_large"),
    (AudioTooLongError, 413, "invalid_request_error", "audio_too_long"),
    (BodyReadTimeoutError, 408, "invalid_request_error", "request_timeout"),
    (AuthenticationError, 401, "invalid_request_error", "invalid_api_key"),
    (ForbiddenOriginError, 403, "invalid_request_error", "forbidden"),
    (ModelNotFoundError, 404, "invalid_request_error", "model_not_found"),
    (InvalidRequestError, 400, "invalid_request_error", "invalid_value"),
    (ModelUnavailableError, 503, "server_error", "model_unavailable"),
    (WorkerCrashError, 503, "server_error", "worker_crashed"),
    (WorkerTimeoutError, 504, "server_error", "worker_timeout"),
    (InferenceError, 500, "server_error", "inference_failed"),
]


def error_body(
    message: str, error_type: str, code: str, param: str | None = None
) -> dict[str, Any]:
    """The OpenAI error envelope."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def classify(exc: TheoError) -> tuple[int, str, str]:
    """HTTP status, error type and code for a domain error."""
    for cls, status, error_type, code in _ERROR_TABLE:
        if isinstance(exc, cls):
            return status, error_type, code
    return 500, "server_error", "internal_error"


def response_for(exc: TheoError, retry_after_s: int) -> JSONResponse:
    """Build the JSON error response for a domain error."""
    status, error_type, code = classify(exc)
    param = exc.param
    headers = {"Retry-After": str(retry_after_s)} if status == 503 else None
    return JSONResponse(
        error_body(exc.message, error_type, code, param), status_code=status, headers=headers
    )


def _excerpt(text: str) -> str:
    """At most a short excerpt of client-controlled text, for an error message."""
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 3] + "..."


def validation_message(errors: list[dict[str, Any]]) -> tuple[str, str | None, str]:
    """Message, param and code for a request validation failure.

    Built from the first error's location and reason only: never from the rejected input
    (which may be megabytes of the client's body) nor from the endpoint's source location.
    """
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        reason = str(first.get("ctx", {}).get("error", "")) or "malformed JSON"
        return f"The request body is not valid JSON: {_excerpt(reason)}", None, "invalid_json"
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    param = ".".join(loc) or None
    reason = _excerpt(str(first.get("msg", "invalid value")))
    if param is None:
        return f"Invalid request body: {reason}.", None, "invalid_value"
    return f"Invalid value for '{_excerpt(param)}': {reason}.", param, "invalid_value"


def client_closed(request: Request) -> Response:
    """The answer to a request whose client went away: one info line, no traceback."""
    log.info("client_disconnected", path=request.url.path, method=request.method)
    return Response(status_code=CLIENT_CLOSED_REQUEST)


def install_error_handlers(app: FastAPI, retry_after_s: int) -> None:
    """Register the handlers that turn every failure into an OpenAI-shaped answer."""

    async def on_theo_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TheoError)
        return response_for(exc, retry_after_s)

    async def on_client_disconnect(request: Request, exc: Exception) -> Response:
        return client_closed(request)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message, param, code = validation_message(list(exc.errors()))
        return JSONResponse(
            error_body(message, "invalid_request_error", code, param), status_code=400
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        # FastAPI turns any failure while reading a body into "400 error parsing the body";
        # the cause says what really happened (the client left, a limit, a stalled upload).
        cause = exc.__cause__
        if isinstance(cause, ClientDisconnect):
            return client_closed(request)
        if isinstance(cause, TheoError):
            return response_for(cause, retry_after_s)
        error_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(_excerpt(str(exc.detail)), error_type, code),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # One traceback, without local variables; Starlette re-raises the error for the
        # server to log, which the log filter then skips.
        if not is_logged(exc):
            log.error("unhandled_error", path=request.url.path, exc_info=exc)
            mark_logged(exc)
        return JSONResponse(
            error_body("Internal server error.", "server_error", "internal_error"),
            status_code=500,
        )

    app.add_exception_handler(TheoError, on_theo_error)
    app.add_exception_handler(ClientDisconnect, on_client_disconnect)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
