"""One rule for failed worker calls: statuses, lost workers and the caller's own cancel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from theo.errors import (
    InferenceError,
    InvalidRequestError,
    TheoError,
    WorkerCrashError,
    WorkerTimeoutError,
)
from theo.workers.handle import WorkerHandle
from theo.workers.rpc import rpc_failures

WORKER = WorkerHandle("stt-m", "m", Path("/m"), "fake")
LOST = "The worker for 'm' stopped while serving the request; it is being restarted. Retry shortly."
STREAM_LOST = "The worker for 'm' stopped during the session."


def _rpc_error(
    code: grpc.StatusCode,
    details: str = "detail",
    param: str | None = None,
    *,
    engine_failure: bool = False,
) -> grpc.aio.AioRpcError:
    pairs = [("theo-param", param)] if param else []
    if engine_failure:
        pairs.append(("theo-engine-failure", "1"))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*pairs), details)


def _mapped(exc: BaseException, *, stream: bool = False) -> TheoError:
    with pytest.raises(TheoError) as raised, rpc_failures(WORKER, stream=stream):
        raise exc
    assert raised.value.__cause__ is (None if isinstance(exc, asyncio.CancelledError) else exc)
    return raised.value


def test_a_refusal_names_its_field() -> None:
    error = _mapped(_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "Unknown voice 'x'.", "voice"))
    assert type(error) is InvalidRequestError
    assert (error.message, error.param) == ("Unknown voice 'x'.", "voice")


def test_an_engine_failure_is_an_inference_error() -> None:
    error = _mapped(_rpc_error(grpc.StatusCode.INTERNAL, engine_failure=True))
    assert type(error) is InferenceError
    assert error.message == "The engine failed on this request: detail"


def test_an_internal_the_worker_did_not_answer_is_a_lost_worker() -> None:
    # gRPC reports a call cut by a dying worker's connection ("Stream removed") as INTERNAL.
    error = _mapped(_rpc_error(grpc.StatusCode.INTERNAL, "Stream removed"))
    assert type(error) is WorkerCrashError
    assert error.message == LOST


@pytest.mark.parametrize(
    ("code", "kind", "message"),
    [
        (
            grpc.StatusCode.DEADLINE_EXCEEDED,
            WorkerTimeoutError,
            "The worker for 'm' did not answer in time.",
        ),
        (grpc.StatusCode.UNAVAILABLE, WorkerCrashError, LOST),
        (grpc.StatusCode.CANCELLED, WorkerCrashError, LOST),
        (grpc.StatusCode.UNKNOWN, WorkerCrashError, LOST),
    ],
)
def test_each_status_of_a_call_has_its_domain_error(
    code: grpc.StatusCode, kind: type[TheoError], message: str
) -> None:
    error = _mapped(_rpc_error(code))
    assert type(error) is kind
    assert error.message == message


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN]
)
def test_on_a_stream_anything_but_a_refusal_is_a_break(code: grpc.StatusCode) -> None:
    error = _mapped(_rpc_error(code), stream=True)
    assert type(error) is WorkerCrashError
    assert error.message == STREAM_LOST
    refusal = _mapped(_rpc_error(grpc.StatusCode.INVALID_ARGUMENT, param="language"), stream=True)
    assert type(refusal) is InvalidRequestError and refusal.param == "language"


def test_a_write_on_an_ended_call_is_a_break() -> None:
    error = _mapped(grpc.aio.UsageError("done"), stream=True)
    assert type(error) is WorkerCrashError and error.message == STREAM_LOST


async def test_a_call_cancelled_under_the_caller_means_the_worker_was_lost() -> None:
    # What a call raises when the manager closes a dead worker's channel.
    error = _mapped(asyncio.CancelledError())
    assert type(error) is WorkerCrashError and error.message == LOST
    assert type(_mapped(asyncio.CancelledError(), stream=True)) is WorkerCrashError


async def test_the_callers_own_cancellation_goes_through() -> None:
    started = asyncio.Event()

    async def call() -> None:
        with rpc_failures(WORKER):
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(call())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_other_errors_are_left_alone() -> None:
    with pytest.raises(ValueError, match="boom"), rpc_failures(WORKER):
        raise ValueError("boom")
