"""gRPC servicer of the STT worker: an adapter between the wire and one engine.

Inference runs on a dedicated thread so the gRPC event loop keeps answering Health
and Cancel while a long decode is running.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np

from theo.logging import get_logger
from theo.proto import stt_worker_pb2 as pb
from theo.proto import stt_worker_pb2_grpc as pb_grpc
from theo.workers.stt.backend import (
    CancelledByClient,
    LoadedModelInfo,
    STTBackend,
    UnsupportedParameterError,
)
from theo.workers.stt.converters import params_from_proto, result_to_proto

log = get_logger("worker.stt")


class STTWorkerServicer(pb_grpc.STTWorkerServicer):
    """Serves one loaded model; decodes one request at a time, queueing the rest."""

    def __init__(self, backend: STTBackend, model_name: str) -> None:
        self._backend = backend
        self._model_name = model_name
        self._info: LoadedModelInfo | None = None
        self._load_error = ""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._cancel_events: dict[str, threading.Event] = {}
        self._active = 0

    def mark_loaded(self, info: LoadedModelInfo) -> None:
        """Called once the model is in memory; Health turns READY."""
        self._info = info

    def mark_failed(self, error: str) -> None:
        """Called when the model could not be loaded; Health reports ERROR."""
        self._load_error = error

    async def TranscribeFile(  # noqa: N802 - name fixed by the generated gRPC base class
        self, request: pb.TranscribeFileRequest, context: grpc.aio.ServicerContext
    ) -> pb.TranscribeFileResponse:
        """Decode a whole clip; aborts with CANCELLED if the caller goes away."""
        if self._info is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "model is still loading")
        if request.sample_rate != 16_000 or len(request.audio_pcm16) % 2:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "audio must be 16 kHz mono PCM16")
        params = params_from_proto(request)
        audio = np.frombuffer(request.audio_pcm16, dtype=np.int16).astype(np.float32) / 32768.0
        cancel = threading.Event()
        key = request.request_id or str(id(cancel))
        self._cancel_events[key] = cancel
        self._active += 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self._executor, self._backend.transcribe, audio, params, cancel
        )
        try:
            result = await future
        except asyncio.CancelledError:
            # The client disconnected: stop the engine between segments.
            cancel.set()
            log.info("transcription_cancelled", request_id=request.request_id)
            raise
        except CancelledByClient:
            await context.abort(grpc.StatusCode.CANCELLED, "cancelled")
        except UnsupportedParameterError as exc:
            context.set_trailing_metadata((("theo-param", exc.param),))
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
        except Exception as exc:
            log.exception("transcription_failed", request_id=request.request_id)
            await context.abort(grpc.StatusCode.INTERNAL, f"inference failed: {exc}")
        finally:
            self._active -= 1
            self._cancel_events.pop(key, None)
        log.info(
            "transcription_done",
            request_id=request.request_id,
            duration_s=round(result.duration, 2),
            language=result.language,
        )
        return result_to_proto(result)

    async def TranscribeStream(  # noqa: N802 - name fixed by the generated gRPC base class
        self,
        request_iterator: AsyncIterator[pb.AudioFrame],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.TranscriptEvent]:
        """Realtime streaming is served by a later capability; the contract is fixed now."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "streaming is not available yet")
        yield pb.TranscriptEvent()  # pragma: no cover - makes this an async generator

    async def Cancel(  # noqa: N802 - name fixed by the generated gRPC base class
        self, request: pb.CancelRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelResponse:
        """Ask an in-flight request to stop at the next segment boundary."""
        event = self._cancel_events.get(request.request_id)
        if event is not None:
            event.set()
        return pb.CancelResponse(acknowledged=event is not None)

    async def Health(  # noqa: N802 - name fixed by the generated gRPC base class
        self, request: pb.HealthRequest, context: grpc.aio.ServicerContext
    ) -> pb.HealthResponse:
        """Report load state; a worker counts as alive only if it answers this."""
        if self._load_error:
            status = pb.WORKER_STATUS_ERROR
        elif self._info is None:
            status = pb.WORKER_STATUS_LOADING
        elif self._active:
            status = pb.WORKER_STATUS_BUSY
        else:
            status = pb.WORKER_STATUS_READY
        info = self._info
        return pb.HealthResponse(
            status=status,
            model_name=self._model_name,
            engine=self._backend.engine_name,
            device=info.device if info else "",
            compute_type=info.compute_type if info else "",
            active_requests=self._active,
            error=self._load_error,
        )

    def shutdown(self) -> None:
        """Cancel in-flight work and release the inference thread."""
        for event in self._cancel_events.values():
            event.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
