"""Send speech requests to TTS workers and stream their audio back.

The API-process side of text-to-speech: open a Synthesize stream on the worker the
:class:`~theo.workers.routing.Router` picks, and map worker failures to Theo's domain
errors. A stream is handed out only once its first chunk has arrived, so a request the
engine rejects (or a worker that dies at once) still gets a proper error status before
any audio is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from theo.config import Settings
from theo.errors import InferenceError
from theo.types import SpeechChunk, SpeechRequest, VoiceCatalog
from theo.wire.proto import tts_worker_pb2 as pb
from theo.wire.tts import catalog_from_proto, chunk_from_proto, speech_to_proto
from theo.workers.handle import WorkerHandle
from theo.workers.routing import Router, WorkerSource
from theo.workers.rpc import rpc_failures


class SpeechStream:
    """An open Synthesize call whose first chunk has arrived.

    Iterate it for every chunk, first included; :meth:`close` cancels the synthesis if it
    is still running. Errors after the first chunk surface from the iteration as domain
    errors.
    """

    def __init__(self, call: Any, worker: WorkerHandle, generation: int) -> None:
        self._call = call
        self._worker = worker
        self._generation = generation
        self._first: SpeechChunk | None = None
        self._finished = False
        self._closed = False
        self.audio_s = 0.0
        """Seconds of audio received so far."""
        self.chunks = 0
        """Chunks received so far."""

    @property
    def first(self) -> SpeechChunk:
        """The first chunk (available once the stream is open)."""
        if self._first is None:
            raise RuntimeError("the stream has not started")
        return self._first

    @property
    def finished(self) -> bool:
        """Whether the worker sent its last chunk."""
        return self._finished

    async def _read(self) -> SpeechChunk | None:
        with rpc_failures(self._worker):
            message = await self._call.read()
        if message is grpc.aio.EOF:
            self._finished = True
            return None
        chunk = chunk_from_proto(message)
        self.audio_s += chunk.duration_s
        self.chunks += 1
        return chunk

    async def start(self) -> None:
        """Wait for the first chunk.

        Raises:
            TheoError: the worker rejected the request or failed before any audio.
        """
        first = await self._read()
        if first is None:
            raise InferenceError("The engine produced no audio for this input.")
        self._first = first

    async def __aiter__(self) -> AsyncIterator[SpeechChunk]:
        yield self.first
        while (chunk := await self._read()) is not None:
            yield chunk

    async def close(self) -> None:
        """Cancel the synthesis if it still runs; release the worker's request slot."""
        if self._closed:
            return
        self._closed = True
        if not self._finished:
            self._call.cancel()
        self._worker.end_request(self._generation)


class SynthesisClient:
    """Routes speech requests to the TTS workers of the :class:`WorkerManager`."""

    def __init__(self, manager: WorkerSource, settings: Settings) -> None:
        self._router = Router(manager)
        self._settings = settings

    async def open(self, request: SpeechRequest) -> SpeechStream:
        """Start synthesizing on a worker and wait for the first chunk.

        Raises:
            ModelUnavailableError: no worker of the model is ready.
            InvalidRequestError: the engine cannot honour the voice, language, speed or text.
            TheoError: the worker failed (see :mod:`theo.workers.rpc`).
        """
        worker = self._router.pick(request.model)
        assert worker.tts_stub is not None
        generation = worker.begin_request()
        call = worker.tts_stub.Synthesize(
            speech_to_proto(request), timeout=self._settings.request_timeout_s
        )
        stream = SpeechStream(call, worker, generation)
        try:
            await stream.start()
        except BaseException:
            await stream.close()
            raise
        return stream

    async def voices(self, model: str) -> VoiceCatalog:
        """The voices of ``model``, asked of one of its workers."""
        worker = self._router.pick(model)
        assert worker.tts_stub is not None
        with rpc_failures(worker):
            answer = await worker.tts_stub.ListVoices(
                pb.ListVoicesRequest(), timeout=self._settings.worker.health_timeout_s
            )
        return catalog_from_proto(answer, model)
