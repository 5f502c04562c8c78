"""Domain errors cross the wire both ways: a worker aborts, the API process maps back."""

from __future__ import annotations

import grpc
import pytest

from tests.unit.wire.context import Aborted, RecordingContext
from theo.errors import (
    AudioFormatError,
    CapabilityError,
    InferenceError,
    InvalidRequestError,
    ModelUnavailableError,
    TheoError,
    WorkerCrashError,
    WorkerTimeoutError,
)
from theo.wire.errors import (
    abort,
    abort_cancelled,
    error_from_rpc,
    status_for,
    stream_error_from_rpc,
)

LOST = "The worker for 'm' stopped while serving the request; it is being restarted. Retry shortly."


@pytest.fixture
def context() -> RecordingContext:
    return RecordingContext()


async def _across(error: TheoError, context: RecordingContext) -> TheoError:
    with pytest.raises(Aborted):
        await abort(context, error)
    return error_from_rpc(context.as_rpc_error(), "m")


@pytest.mark.parametrize(
    "error",
    [
        InvalidRequestError("Unknown voice 'x'.", param="voice"),
        CapabilityError("This model is English-only; it cannot translate.", param="model"),
        AudioFormatError("audio must be 16 kHz mono PCM16"),
        InvalidRequestError("no request was sent"),
    ],
)
async def test_a_refusal_arrives_with_its_message_and_field(
    error: InvalidRequestError, context: RecordingContext
) -> None:
    back = await _across(error, context)
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.trailers == ((("theo-param", error.param),) if error.param else ())
    assert type(back) is InvalidRequestError
    assert (back.message, back.param) == (error.message, error.param)


@pytest.mark.parametrize(
    ("error", "code", "kind", "message"),
    [
        (
            InferenceError("inference failed: boom"),
            grpc.StatusCode.INTERNAL,
            InferenceError,
            "The engine failed on this request: inference failed: boom",
        ),
        (
            WorkerTimeoutError("too slow"),
            grpc.StatusCode.DEADLINE_EXCEEDED,
            WorkerTimeoutError,
            "The worker for 'm' did not answer in time.",
        ),
        (
            ModelUnavailableError("model is still loading"),
            grpc.StatusCode.UNAVAILABLE,
            WorkerCrashError,
            LOST,
        ),
        (WorkerCrashError("going away"), grpc.StatusCode.UNAVAILABLE, WorkerCrashError, LOST),
    ],
)
async def test_failures_arrive_as_the_api_sides_errors(
    error: TheoError,
    code: grpc.StatusCode,
    kind: type[TheoError],
    message: str,
    context: RecordingContext,
) -> None:
    back = await _across(error, context)
    assert context.code == code
    assert context.details == error.message
    # Only an engine failure is marked: the API side tells it from a cut connection.
    engine_failure = code == grpc.StatusCode.INTERNAL
    assert context.trailers == ((("theo-engine-failure", "1"),) if engine_failure else ())
    assert type(back) is kind
    assert back.message == message


async def test_a_cancelled_call_means_a_lost_worker_to_the_api_side(
    context: RecordingContext,
) -> None:
    with pytest.raises(Aborted):
        await abort_cancelled(context)
    assert context.code == grpc.StatusCode.CANCELLED
    assert error_from_rpc(context.as_rpc_error(), "m").message == LOST


async def test_a_stream_reads_only_refusals_as_such(context: RecordingContext) -> None:
    with pytest.raises(Aborted):
        await abort(context, InvalidRequestError("Unsupported language 'xx'.", "language"))
    refusal = stream_error_from_rpc(context.as_rpc_error(), "m")
    assert type(refusal) is InvalidRequestError and refusal.param == "language"
    engine_failure = RecordingContext()
    with pytest.raises(Aborted):
        await abort(engine_failure, InferenceError("inference failed: boom"))
    broken = stream_error_from_rpc(engine_failure.as_rpc_error(), "m")
    assert type(broken) is WorkerCrashError
    assert broken.message == "The worker for 'm' stopped during the session."


def test_any_other_domain_error_is_an_engine_failure() -> None:
    assert status_for(TheoError("unexpected")) == grpc.StatusCode.INTERNAL
