"""gRPC servicer of the STT worker: an adapter between the wire and one engine.

Inference runs off the gRPC event loop, so Health and Cancel keep answering while a
long decode runs. The engine runs a fixed number of calls at once, its lanes
(faster-whisper: CTranslate2 replicas sharing the weights). Batch requests run on one
thread per lane, first come first served, so a new request starts while a cancelled one
finishes its last engine call; realtime streams on one thread per lane too, segment
finals ahead of queued partial passes (see PriorityExecutor). Realtime goes first: before
each of its engine calls (encode, generate, align) a batch request waits while realtime
work is queued or every lane is busy, at most ``batch_max_wait_s`` (see RealtimeFirst),
and a cancelled batch request stops there too.

Requests are checked against the capabilities the engine declared for its loaded model
before any decoding; what it cannot do is refused with INVALID_ARGUMENT naming the field.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import aclosing

import grpc

from theo.audio.pcm import ENGINE_SAMPLE_RATE, pcm16_to_float
from theo.engines.stt.backend import (
    BatchControl,
    CancelledByClient,
    LoadedModelInfo,
    STTBackend,
    STTCapabilities,
)
from theo.engines.stt.pass_batcher import PassBatcher
from theo.engines.stt.priority_executor import PriorityExecutor
from theo.engines.stt.realtime_first import RealtimeFirst
from theo.engines.stt.stream_transcriber import StreamFrame, StreamTranscriber
from theo.errors import InferenceError, InvalidRequestError, ModelUnavailableError
from theo.logging import get_logger
from theo.types import BatchResult, SchedulerStats, Segment, TranscriptKind, WorkerHealth
from theo.wire.errors import abort, abort_cancelled
from theo.wire.health import stt_health_to_proto, worker_status
from theo.wire.proto import stt_worker_pb2 as pb
from theo.wire.proto import stt_worker_pb2_grpc as pb_grpc
from theo.wire.stt import params_from_proto, result_to_proto, segment_to_proto
from theo.wire.stt_realtime import frame_from_proto, transcript_to_proto

log = get_logger("worker.stt")

_LOADING = ModelUnavailableError("model is still loading")


async def _frames(
    requests: AsyncIterator[pb.AudioFrame], capabilities: STTCapabilities
) -> AsyncIterator[StreamFrame]:
    """Validate and convert the frames of a stream as they arrive.

    Raises:
        InvalidRequestError: audio that is not PCM16, or a language the model cannot hear.
    """
    async for message in requests:
        session_id, audio = frame_from_proto(message)
        if len(audio.audio_pcm16) % 2:
            raise InvalidRequestError("audio_pcm16 must be 16 kHz mono PCM16 (an even byte count)")
        capabilities.check_language(audio.language)
        yield StreamFrame(
            audio=pcm16_to_float(audio.audio_pcm16),
            is_last=audio.is_last,
            session_id=session_id,
            segment_id=audio.segment_id,
            language=audio.language,
            prompt=audio.prompt,
            hot_words=audio.hot_words,
            enable_partials=audio.enable_partials,
            speaker_paused=audio.speaker_paused,
        )


def _ms_between(start: float, end: float | None) -> float | None:
    return None if end is None else round((end - start) * 1000, 1)


class STTWorkerServicer(pb_grpc.STTWorkerServicer):
    """Serves one loaded model: batch and stream decodes on the engine's lanes."""

    def __init__(
        self,
        backend: STTBackend,
        model_name: str,
        *,
        batch_max_wait_s: float = 6.0,
        max_pass_batch: int = 1,
    ) -> None:
        """``batch_max_wait_s``: longest a batch engine call waits for realtime work;
        ``max_pass_batch``: the most streams' partial passes decoded in one engine call."""
        self._backend = backend
        self._model_name = model_name
        self._info: LoadedModelInfo | None = None
        self._load_error = ""
        # Batch requests run one per engine lane, each on its own thread (see mark_loaded).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._stream_executor = PriorityExecutor(thread_name="streaming")
        self._turns = RealtimeFirst(self._stream_executor, batch_max_wait_s)
        self._passes = PassBatcher(backend, self._stream_executor, max_pass_batch)
        self._cancel_events: dict[str, threading.Event] = {}
        self._active = 0
        self._batch_requests = 0
        self._cancels = 0
        self._cancel_latency_s = 0.0

    def mark_loaded(self, info: LoadedModelInfo) -> None:
        """Called once the model is in memory; Health turns READY. Realtime decodes get
        as many lanes as the engine runs calls at once."""
        self._stream_executor.set_lanes(info.lanes)
        if info.lanes > 1:
            # A batch request then starts beside another (or a cancelled one's last engine
            # call) instead of after it; realtime work still goes first at every call.
            self._executor.shutdown(wait=False)
            self._executor = ThreadPoolExecutor(
                max_workers=info.lanes, thread_name_prefix="inference"
            )
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
        first, audio = await self._receive_upload(request_iterator, context)
        return await self._transcribe_file(first, audio, context)

    async def TranscribeFileSegments(  # noqa: N802 - name fixed by the generated gRPC base class
        self,
        request_iterator: AsyncIterator[pb.TranscribeFileRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.TranscribeFileEvent]:
        """Decode an uploaded clip, sending each segment as soon as the engine has it,
        then the whole result."""
        first, audio = await self._receive_upload(request_iterator, context)
        loop = asyncio.get_running_loop()
        decoded: asyncio.Queue[tuple[Segment, str]] = asyncio.Queue()

        def on_segment(segment: Segment, language: str) -> None:  # from the decoding thread
            loop.call_soon_threadsafe(decoded.put_nowait, (segment, language))

        run = asyncio.ensure_future(self._transcribe_file(first, audio, context, on_segment))
        try:
            while True:
                getter = asyncio.ensure_future(decoded.get())
                await asyncio.wait({getter, run}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    break
                yield _segment_event(*getter.result())
            # The segments' callbacks were scheduled before the result's: none is left behind.
            while not decoded.empty():
                yield _segment_event(*decoded.get_nowait())
            yield pb.TranscribeFileEvent(result=await run)
        finally:
            if not run.done():
                run.cancel()  # the client went away: the engine stops at its next segment

    async def _receive_upload(
        self,
        request_iterator: AsyncIterator[pb.TranscribeFileRequest],
        context: grpc.aio.ServicerContext,
    ) -> tuple[pb.TranscribeFileRequest, bytearray]:
        first: pb.TranscribeFileRequest | None = None
        audio = bytearray()
        async for message in request_iterator:
            if first is None:
                first = message
            audio += message.audio_pcm16
        if first is None:
            await abort(context, InvalidRequestError("no request was sent"))
        assert first is not None
        return first, audio

    async def _transcribe_file(
        self,
        request: pb.TranscribeFileRequest,
        pcm16: bytes | bytearray,
        context: grpc.aio.ServicerContext,
        on_segment: Callable[[Segment, str], None] | None = None,
    ) -> pb.TranscribeFileResponse:
        if self._info is None:
            await abort(context, _LOADING)
        if request.sample_rate != ENGINE_SAMPLE_RATE or len(pcm16) % 2:
            await abort(context, InvalidRequestError("audio must be 16 kHz mono PCM16"))
        params = params_from_proto(request)
        if params.coarse_segments and self._active > self._batch_requests:
            # Realtime streams decode here: a call of several windows would hold a lane
            # for seconds while their finals wait (benchmarks/README.md, "Long audio in batches").
            params = dataclasses.replace(params, coarse_segments=False)
        try:
            self._info.capabilities.check_batch(params)
        except InvalidRequestError as exc:
            await abort(context, exc)
        audio = pcm16_to_float(pcm16)
        cancel = BatchControl(self._turns.wait_turn, self._turns.holding)
        key = request.request_id or str(id(cancel))
        self._cancel_events[key] = cancel
        self._active += 1
        self._batch_requests += 1
        decode = functools.partial(self._backend.transcribe, audio, params, cancel)
        if on_segment is not None:
            decode = functools.partial(decode, on_segment=on_segment)
        running = self._executor.submit(decode)
        try:
            result = await asyncio.wrap_future(running)
        except asyncio.CancelledError:
            # The client disconnected: the engine stops before its next call.
            cancel.set()
            log.info("transcription_cancelled", request_id=request.request_id)
            loop = asyncio.get_running_loop()
            running.add_done_callback(
                lambda done: loop.call_soon_threadsafe(
                    self._stopped, request.request_id, cancel, done
                )
            )
            raise
        except CancelledByClient:
            await abort_cancelled(context)
        except InvalidRequestError as exc:
            await abort(context, exc)
        except Exception as exc:
            log.exception("transcription_failed", request_id=request.request_id)
            await abort(context, InferenceError(f"inference failed: {exc}"))
        finally:
            self._active -= 1
            self._batch_requests -= 1
            self._cancel_events.pop(key, None)
        log.info(
            "transcription_done",
            request_id=request.request_id,
            duration_s=round(result.duration, 2),
            language=result.language,
            # From the request's arrival to its first engine call: the wait for a batch
            # thread and for the engine's turn.
            started_after_ms=_ms_between(cancel.created_at, cancel.first_call_at),
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
        info = self._info
        if info is None:
            await abort(context, _LOADING)
        try:
            info.capabilities.check_stream()
        except InvalidRequestError as exc:
            await abort(context, exc)
        transcriber = StreamTranscriber(
            self._backend, executor=self._stream_executor, batcher=self._passes
        )
        self._active += 1
        segments = 0
        try:
            frames = _frames(request_iterator, info.capabilities)
            async with aclosing(transcriber.events(frames)) as events:
                async for event in events:
                    if event.kind is TranscriptKind.FINAL:
                        segments += 1
                    yield transcript_to_proto(event, transcriber.session_id)
        except asyncio.CancelledError:
            log.info("stream_cancelled", segments=segments)
            raise
        except InvalidRequestError as exc:
            await abort(context, exc)
        except Exception as exc:
            log.exception("stream_failed", segments=segments)
            await abort(context, InferenceError(f"inference failed: {exc}"))
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

    def _stopped(self, request_id: str, cancel: BatchControl, decode: Future[BatchResult]) -> None:
        """A cancelled batch decode stopped: log and count how long after its cancellation.

        Called on the event loop; ``time.monotonic()`` of the stop is taken here, a loop
        turn after the decoding thread ended, which is close enough for a latency figure.
        """
        stopped_after_s = time.monotonic() - (cancel.cancelled_at or time.monotonic())
        self._cancels += 1
        self._cancel_latency_s += stopped_after_s
        log.info(
            "transcription_stopped",
            request_id=request_id,
            stopped_after_ms=round(stopped_after_s * 1000, 1),
            finished=not decode.cancelled() and decode.exception() is None,
        )

    def _scheduler_stats(self) -> SchedulerStats:
        turns = self._turns
        return SchedulerStats(
            realtime_queued=self._stream_executor.pending,
            batch_queued=max(self._batch_requests - self._stream_executor.lanes, 0),
            batch_calls_waited=turns.waited,
            batch_calls_aged=turns.aged,
            batch_wait_seconds=turns.wait_s,
            cancels=self._cancels,
            pass_calls=self._passes.calls,
            pass_decodes=self._passes.decodes,
            largest_pass_batch=self._passes.largest,
            cancel_latency_seconds=self._cancel_latency_s,
            engine_lanes=self._stream_executor.lanes,
            most_realtime_running=self._stream_executor.most_running,
        )

    async def Health(  # noqa: N802 - name fixed by the generated gRPC base class
        self, request: pb.HealthRequest, context: grpc.aio.ServicerContext
    ) -> pb.HealthResponse:
        """Report load state; a worker counts as alive only if it answers this."""
        info = self._info
        return stt_health_to_proto(
            WorkerHealth(
                status=worker_status(self._load_error, info is not None, self._active),
                device=info.device if info else "",
                compute_type=info.compute_type if info else "",
                error=self._load_error,
                model_name=self._model_name,
                engine=self._backend.engine_name,
                active_requests=self._active,
                scheduler=self._scheduler_stats(),
            )
        )

    def shutdown(self) -> None:
        """Cancel in-flight work and release the inference thread."""
        for event in self._cancel_events.values():
            event.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._stream_executor.shutdown(wait=False, cancel_futures=True)


def _segment_event(segment: Segment, language: str) -> pb.TranscribeFileEvent:
    return pb.TranscribeFileEvent(segment=segment_to_proto(segment), language=language)
