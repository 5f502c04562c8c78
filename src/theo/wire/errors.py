"""Failures on the wire: domain errors to gRPC statuses in the worker, and back in the API.

Both worker kinds signal failures alike. A request the engine cannot honour is
INVALID_ARGUMENT with the offending field in the ``theo-param`` trailer; an engine failure
is INTERNAL; a worker that cannot serve yet is UNAVAILABLE; a timeout is
DEADLINE_EXCEEDED. On the API side, any status that is none of the first ones means the
worker went away: the request may be retried once it is back. That includes an INTERNAL
the worker did not answer itself (no ``theo-engine-failure`` trailer): gRPC reports a
call cut by a dying worker's connection as INTERNAL too.

A realtime stream reads statuses more coarsely: only INVALID_ARGUMENT is a refusal;
everything else breaks the stream, since a write to a reset connection reports even
INTERNAL, so the status cannot tell a dead worker from an engine failure there.
"""

from __future__ import annotations

from typing import NoReturn

import grpc

from theo.errors import (
    InferenceError,
    InvalidRequestError,
    ModelUnavailableError,
    TheoError,
    WorkerCrashError,
    WorkerTimeoutError,
)

PARAM_TRAILER = "theo-param"
"""Trailing metadata key naming the request field an INVALID_ARGUMENT refers to."""

ENGINE_FAILURE_TRAILER = "theo-engine-failure"
"""Trailing metadata key marking an INTERNAL the worker itself answered (an engine
failure). gRPC also reports INTERNAL for a call cut by a dying worker's connection
("Stream removed", RST_STREAM), so an INTERNAL without it means the worker was lost."""

# ---------------------------------------------------------------- worker side


def status_for(error: TheoError) -> grpc.StatusCode:
    """The gRPC status a worker answers ``error`` with."""
    if isinstance(error, InvalidRequestError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(error, ModelUnavailableError | WorkerCrashError):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(error, WorkerTimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.INTERNAL


async def abort(context: grpc.aio.ServicerContext, error: TheoError) -> NoReturn:
    """End the call with ``error``'s status, message and field (``theo-param``)."""
    status = status_for(error)
    trailers: list[tuple[str, str]] = []
    if error.param:
        trailers.append((PARAM_TRAILER, error.param))
    if status == grpc.StatusCode.INTERNAL:
        trailers.append((ENGINE_FAILURE_TRAILER, "1"))
    if trailers:
        context.set_trailing_metadata(tuple(trailers))
    await context.abort(status, error.message)
    raise AssertionError("unreachable: ServicerContext.abort raises")


async def abort_cancelled(context: grpc.aio.ServicerContext) -> NoReturn:
    """End a call whose work was cancelled at the client's request."""
    await context.abort(grpc.StatusCode.CANCELLED, "cancelled")
    raise AssertionError("unreachable: ServicerContext.abort raises")


# ---------------------------------------------------------------- API side


def worker_lost(model: str) -> WorkerCrashError:
    """The error for a call that died with the worker of ``model``."""
    return WorkerCrashError(
        f"The worker for '{model}' stopped while serving the request; "
        "it is being restarted. Retry shortly."
    )


def stream_lost(model: str) -> WorkerCrashError:
    """The error for a realtime stream broken with the worker of ``model``."""
    return WorkerCrashError(f"The worker for '{model}' stopped during the session.")


def _refusal(exc: grpc.aio.AioRpcError) -> InvalidRequestError:
    param = dict(exc.trailing_metadata() or ()).get(PARAM_TRAILER)
    return InvalidRequestError(exc.details() or "invalid", param=str(param) if param else None)


def error_from_rpc(exc: grpc.aio.AioRpcError, model: str) -> TheoError:
    """The domain error for a failed call to a worker of ``model``."""
    code = exc.code()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return _refusal(exc)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return WorkerTimeoutError(f"The worker for '{model}' did not answer in time.")
    engine_failed = ENGINE_FAILURE_TRAILER in dict(exc.trailing_metadata() or ())
    if code == grpc.StatusCode.INTERNAL and engine_failed:
        return InferenceError(f"The engine failed on this request: {exc.details() or ''}")
    return worker_lost(model)


def stream_error_from_rpc(exc: grpc.aio.AioRpcError, model: str) -> TheoError:
    """The domain error for a broken realtime stream to a worker of ``model``."""
    if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
        return _refusal(exc)
    return stream_lost(model)
