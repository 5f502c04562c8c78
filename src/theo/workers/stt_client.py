"""Speech-to-text requests to the STT workers: batch calls and realtime streams.

The API-process side of speech-to-text: each request goes to the worker the
:class:`~theo.workers.routing.Router` picks; failures come back as domain errors (see
:mod:`theo.workers.rpc`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from theo.config import Settings
from theo.types import BatchResult, DecodedSegment, TranscribeRequest
from theo.wire.stt import request_to_upload, result_from_proto, segment_from_proto
from theo.wire.stt_realtime import SESSION_METADATA
from theo.workers.routing import Router, WorkerSource
from theo.workers.rpc import rpc_failures
from theo.workers.stt_stream import WorkerStream


class SimpleScheduler:
    """First come, first served: each request goes to the least-loaded ready worker.

    The worker queues requests it cannot start yet. Implements
    :class:`theo.workers.scheduler.Scheduler`.
    """

    def __init__(self, manager: WorkerSource, settings: Settings) -> None:
        self._router = Router(manager)
        self._settings = settings

    async def transcribe(self, request: TranscribeRequest) -> BatchResult:
        """Send the request to a worker; see :class:`theo.workers.scheduler.Scheduler`."""
        worker = self._router.pick(request.model)
        assert worker.stub is not None
        generation = worker.begin_request()
        try:
            with rpc_failures(worker):
                response = await worker.stub.TranscribeFileUpload(
                    request_to_upload(request), timeout=self._settings.request_timeout_s
                )
        finally:
            worker.end_request(generation)
        return result_from_proto(response)

    async def transcribe_segments(
        self, request: TranscribeRequest
    ) -> AsyncGenerator[DecodedSegment | BatchResult, None]:
        """Send the request to a worker and yield its segments as they are decoded, then
        the result; see :class:`theo.workers.scheduler.Scheduler`."""
        worker = self._router.pick(request.model)
        assert worker.stub is not None
        generation = worker.begin_request()
        call = worker.stub.TranscribeFileSegments(
            request_to_upload(request), timeout=self._settings.request_timeout_s
        )
        try:
            with rpc_failures(worker):
                async for event in call:
                    if event.HasField("segment"):
                        yield DecodedSegment(segment_from_proto(event.segment), event.language)
                    else:
                        yield result_from_proto(event.result)
        finally:
            call.cancel()  # a no-op once it finished; stops the engine if the client left
            worker.end_request(generation)

    def open_stream(
        self, model: str, session_id: str, *, avoid: WorkerStream | None = None
    ) -> WorkerStream:
        """Open a TranscribeStream on the least-loaded ready worker of ``model`` (another
        than ``avoid``'s process when there is one)."""
        worker = self._router.pick(model, avoid=avoid)
        assert worker.stub is not None
        call = worker.stub.TranscribeStream(metadata=((SESSION_METADATA, session_id),))
        return WorkerStream(call, worker, session_id)

    async def wait_ready(
        self, model: str, timeout_s: float, *, replacing: WorkerStream | None = None
    ) -> bool:
        """Wait for a ready worker of ``model``; see :class:`Scheduler`."""
        return await self._router.wait_ready(model, timeout_s, replacing=replacing)
