"""gRPC servicer of the STT worker: an adapter between the wire and one engine.

Inference runs off the gRPC event loop, so Health and Cancel keep answering while a
long decode runs: batch requests on one thread, realtime streams on another. Each
thread runs one decode at a time: batch first come first served, streams with segment
finals ahead of queued partial passes (see PriorityExecutor); a long batch file
therefore never holds back realtime finals, and realtime passes (bounded: trimmed
segments, one pass in flight per stream) never starve batch work. The model has one
CTranslate2 replica, which runs one call (encode, generate, align) at a time, so the
two threads take turns call by call rather than competing for the cores.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing

import grpc

from theo.audio.pcm import ENGINE_SAMPLE_RATE, pcm16_to_float
from theo.engines.host import health_status
from theo.engines.stt.backend import (
    CancelledByClient,
    LoadedModelInfo,
    STTBackend,
    UnsupportedParameterError,
)
from theo.engines.stt.priority_executor import PriorityExecutor
from theo.engines.stt.stream_transcriber import StreamFrame, StreamTranscriber
from theo.logging import get_logger
from theo.types import StreamTranscript, TranscriptKind
from theo.wire.proto import stt_worker_pb2 as pb
from theo.wire.proto import stt_worker_pb2_grpc as pb_grpc
from theo.wire.stt import params_from_proto, result_to_proto

log = get_logger("worker.stt")

_EVENT_TYPES = {
    TranscriptKind.PARTIAL: pb.TRANSCRIPT_EVENT_TYPE_PARTIAL,
    TranscriptKind.FINAL: pb.TRANSCRIPT_EVENT_TYPE_FINAL,
}


class InvalidAudioError(ValueError):
    """A stream frame whose audio is not 16-bit PCM."""


async def _frames(requests: AsyncIterator[pb.AudioFrame]) -> AsyncIterator[StreamFrame]:
    """Validate and convert the frames of a stream as they arrive."""
    async for message in requests:
        if len(message.audio_pcm16) % 2:
            raise InvalidAudioError("audio_pcm16 must be 16 kHz mono PCM16 (an even byte count)")
        yield StreamFrame(
            audio=pcm16_to_float(message.audio_pcm16),
            is_last=message.is_last,
            session_id=message.session_id,
            segment_id=message.segment_id,
            language=message.language or None,
            prompt=message.initial_prompt or None,
            hot_words=tuple(message.hot_words),
            enable_partials=message.enable_partials,
            speaker_paused=message.speaker_paused,
        )


def _event_to_proto(event: StreamTranscript, session_id: str) -> pb.TranscriptEvent:
    return pb.TranscriptEvent(
        session_id=session_id,
        type=_EVENT_TYPES[event.kind],
        text=event.text,
        segment_id=event.segment_id,
        start_ms=event.start_ms,
        end_ms=event.end_ms,
        language=event.language,
        confidence=event.confidence,
        words=[
            pb.Word(word=w.word, start=w.start, end=w.end, probability=w.probability)
            for w in event.words
        ],
    )


class STTWorkerServicer(pb_grpc.STTWorkerServicer):
    """Serves one loaded model: one batch decode and one stream decode at a time."""

    def __init__(self, backend: STTBackend, model_name: str) -> None:
        self._backend = backend
        self._model_name = model_name
        self._info: LoadedModelInfo | None = None
        self._load_error = ""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._stream_executor = PriorityExecutor(thread_name="streaming")
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
        return await self._transcribe_file(request, request.audio_pcm16, context)

    async def TranscribeFileUpload(  # noqa: N802 - name fixed by the generated gRPC base class
        self,
        request_iterator: AsyncIterator[pb.TranscribeFileRequest],
        context: grpc.aio.ServicerContext,
    ) -> pb.TranscribeFileResponse:
        """Decode a clip sent in pieces: the first message's fields, every message's audio."""
        first: pb.TranscribeFileRequest | None = None
        audio = bytearray()
        async for message in request_iterator:
            if first is None:
                first = message
            audio += message.audio_pcm16
        if first is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no request was sent")
        assert first is not None
        return await self._transcribe_file(first, audio, context)

    async def _transcribe_file(
        self,
        request: pb.TranscribeFileRequest,
        pcm16: bytes | bytearray,
        context: grpc.aio.ServicerContext,
    ) -> pb.TranscribeFileResponse:
        if self._info is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "model is still loading")
        if request.sample_rate != ENGINE_SAMPLE_RATE or len(pcm16) % 2:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "audio must be 16 kHz mono PCM16")
        params = params_from_proto(request)
        audio = pcm16_to_float(pcm16)
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
        """Transcribe one realtime session: partials while a segment grows, a final per segment.

        Stays open across segments (each ends with ``is_last``) until the client closes
        its side; a client that goes away cancels the stream and its pending decodes.
        """
        if self._info is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "model is still loading")
        transcriber = StreamTranscriber(self._backend, executor=self._stream_executor)
        self._active += 1
        segments = 0
        try:
            async with aclosing(transcriber.events(_frames(request_iterator))) as events:
                async for event in events:
                    if event.kind is TranscriptKind.FINAL:
                        segments += 1
                    yield _event_to_proto(event, transcriber.session_id)
        except asyncio.CancelledError:
            log.info("stream_cancelled", segments=segments)
            raise
        except InvalidAudioError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except UnsupportedParameterError as exc:
            context.set_trailing_metadata((("theo-param", exc.param),))
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
        except Exception as exc:
            log.exception("stream_failed", segments=segments)
            await context.abort(grpc.StatusCode.INTERNAL, f"inference failed: {exc}")
        finally:
            self._active -= 1
        log.info("stream_done", segments=segments)

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
        status = health_status(self._load_error, self._info is not None, self._active)
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
        self._stream_executor.shutdown(wait=False, cancel_futures=True)
