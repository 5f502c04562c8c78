"""Domain errors for failed calls to a worker, whatever its kind (STT or TTS).

Both worker protocols signal failures the same way: INVALID_ARGUMENT with the field in
the ``theo-param`` trailer, INTERNAL for an engine failure, DEADLINE_EXCEEDED for a
timeout; anything else means the worker went away. A worker that dies mid-call may also
surface as a cancelled call (the manager closes the dead worker's channel), which is
told apart from the caller's own cancellation here.
"""

from __future__ import annotations

import asyncio

import grpc

from theo.errors import (
    InferenceError,
    InvalidRequestError,
    TheoError,
    WorkerCrashError,
    WorkerTimeoutError,
)
from theo.logging import get_logger
from theo.workers.handle import WorkerHandle

log = get_logger("workers.rpc")


def worker_lost(worker: WorkerHandle) -> WorkerCrashError:
    """The error for a call that died with its worker."""
    return WorkerCrashError(
        f"The worker for '{worker.model_name}' stopped while serving the request; "
        "it is being restarted. Retry shortly."
    )


def map_rpc_error(exc: grpc.aio.AioRpcError, worker: WorkerHandle) -> TheoError:
    """The domain error for a failed call to ``worker``."""
    code = exc.code()
    detail = exc.details() or ""
    log.warning("worker_call_failed", worker_id=worker.worker_id, code=code.name, detail=detail)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        param = dict(exc.trailing_metadata() or ()).get("theo-param")
        return InvalidRequestError(detail, param=str(param) if param else None)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return WorkerTimeoutError(f"The worker for '{worker.model_name}' did not answer in time.")
    if code == grpc.StatusCode.INTERNAL:
        return InferenceError(f"The engine failed on this request: {detail}")
    return worker_lost(worker)


def being_cancelled() -> bool:
    """Whether the running task itself is being cancelled (not just a gRPC call under it)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
