"""First-come scheduler: send each request to the least-loaded ready worker of its model."""

from __future__ import annotations

import asyncio
import time

import grpc

from theo.config import Settings
from theo.errors import (
    ModelUnavailableError,
)
from theo.logging import get_logger
from theo.types import BatchResult, TranscribeRequest, WorkerState
from theo.wire.stt import request_to_upload, result_from_proto
from theo.workers.handle import WorkerHandle
from theo.workers.manager import WorkerManager
from theo.workers.rpc import being_cancelled, map_rpc_error, worker_lost
from theo.workers.stt_stream import WorkerStream

log = get_logger("scheduler")

# A worker that gives up restarting changes no state; waiters look again this often.
_RECHECK_S = 1.0


class SimpleScheduler:
    """Routes to READY/BUSY workers; the worker queues requests it cannot start yet."""

    def __init__(self, manager: WorkerManager, settings: Settings) -> None:
        self._manager = manager
        self._settings = settings

    @staticmethod
    def _gave_up(worker: WorkerHandle) -> bool:
        if worker.state == WorkerState.STOPPED:
            return True
        return worker.state == WorkerState.CRASHED and worker.last_error.startswith("crashed ")

    def _pick(self, model: str) -> WorkerHandle:
        workers = self._manager.workers_for(model)
        routable = [w for w in workers if w.routable and w.stub is not None]
        if routable:
            return min(routable, key=lambda w: w.active_requests)
        if any(not self._gave_up(w) for w in workers):
            raise ModelUnavailableError(f"Model '{model}' is loading or restarting; retry shortly.")
        detail = "; ".join(w.last_error for w in workers if w.last_error) or "no worker running"
        raise ModelUnavailableError(f"Model '{model}' is unavailable: {detail}.")

    async def transcribe(self, request: TranscribeRequest) -> BatchResult:
        """Send the request to a worker; see :class:`theo.workers.scheduler.Scheduler`."""
        worker = self._pick(request.model)
        assert worker.stub is not None
        generation = worker.begin_request()
        try:
            response = await worker.stub.TranscribeFileUpload(
                request_to_upload(request), timeout=self._settings.request_timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise map_rpc_error(exc, worker) from exc
        except asyncio.CancelledError:
            if being_cancelled():
                raise
            raise worker_lost(worker) from None  # the dead worker's channel was closed
        finally:
            worker.end_request(generation)
        return result_from_proto(response)

    def open_stream(self, model: str, session_id: str) -> WorkerStream:
        """Open a TranscribeStream on the least-loaded ready worker of ``model``."""
        worker = self._pick(model)
        assert worker.stub is not None
        call = worker.stub.TranscribeStream(metadata=(("theo-session-id", session_id),))
        return WorkerStream(call, worker, session_id)

    async def wait_ready(
        self, model: str, timeout_s: float, *, replacing: WorkerStream | None = None
    ) -> bool:
        """Wait for a routable worker of ``model``; see :class:`Scheduler`."""
        workers = self._manager.workers_for(model)
        deadline = time.monotonic() + timeout_s
        while True:
            if any(
                w.routable
                and w.stub is not None
                and not (replacing is not None and replacing.served_by(w))
                for w in workers
            ):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or all(self._gave_up(w) for w in workers):
                return False
            waits = [
                asyncio.ensure_future(w.wait_for_change(min(remaining, _RECHECK_S)))
                for w in workers
            ]
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for wait in pending:
                wait.cancel()
