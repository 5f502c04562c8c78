"""One rule for failed calls to a worker, whatever the call and the worker's kind.

A call fails with :class:`grpc.aio.AioRpcError` (mapped by :mod:`theo.wire.errors`), or,
when the manager closes a dead worker's channel under it, with a bare
:class:`asyncio.CancelledError`. That one is told apart from the caller's own
cancellation, which always propagates as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from theo.logging import get_logger
from theo.wire.errors import error_from_rpc, stream_error_from_rpc, stream_lost, worker_lost
from theo.workers.handle import WorkerHandle

log = get_logger("workers.rpc")


def being_cancelled() -> bool:
    """Whether the running task itself is being cancelled (not just a gRPC call under it)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


@contextmanager
def rpc_failures(worker: WorkerHandle, *, stream: bool = False) -> Iterator[None]:
    """Turn a failure of the calls to ``worker`` in the block into a domain error.

    Args:
        worker: the worker the calls go to.
        stream: the block drives a realtime stream, which reads statuses more coarsely
            (see :mod:`theo.wire.errors`); a write on a call that already ended breaks it.

    Raises:
        TheoError: the mapped failure (a ``WorkerCrashError`` for a lost worker).
        asyncio.CancelledError: the caller's own task is being cancelled.
    """
    model = worker.model_name
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        # A refused request is the caller's mistake, not a worker failure.
        refused = exc.code() == grpc.StatusCode.INVALID_ARGUMENT
        (log.info if refused else log.warning)(
            "worker_call_failed",
            worker_id=worker.worker_id,
            code=exc.code().name,
            detail=exc.details() or "",
        )
        mapped = stream_error_from_rpc(exc, model) if stream else error_from_rpc(exc, model)
        raise mapped from exc
    except grpc.aio.UsageError as exc:
        log.warning("worker_call_failed", worker_id=worker.worker_id, detail=str(exc))
        raise (stream_lost(model) if stream else worker_lost(model)) from exc
    except asyncio.CancelledError:
        if being_cancelled():
            raise
        log.warning("worker_call_lost", worker_id=worker.worker_id)
        raise (stream_lost(model) if stream else worker_lost(model)) from None
