"""A bidirectional transcription stream to one worker, hiding gRPC from the session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from theo.errors import InvalidRequestError, WorkerCrashError
from theo.logging import get_logger
from theo.types import StreamAudio, StreamTranscript, TranscriptKind, Word
from theo.wire.proto import stt_worker_pb2 as pb
from theo.workers.handle import WorkerHandle

log = get_logger("scheduler.stream")

_KIND = {
    pb.TRANSCRIPT_EVENT_TYPE_PARTIAL: TranscriptKind.PARTIAL,
    pb.TRANSCRIPT_EVENT_TYPE_FINAL: TranscriptKind.FINAL,
}


class WorkerStream:
    """One session's TranscribeStream call: send audio, iterate transcripts.

    A broken stream (the worker died) surfaces as :class:`WorkerCrashError` from
    :meth:`send` or :meth:`transcripts`, at once: the stream break is the detection.
    """

    def __init__(self, call: Any, worker: WorkerHandle, session_id: str) -> None:
        self._call = call
        self._worker = worker
        self._session_id = session_id
        self._generation = worker.begin_request()
        self._closed = False

    @property
    def worker_id(self) -> str:
        """The worker serving this stream."""
        return self._worker.worker_id

    def served_by(self, worker: WorkerHandle) -> bool:
        """Whether this stream runs on ``worker``'s current process (not a restarted one)."""
        return worker is self._worker and worker.generation == self._generation

    async def send(self, audio: StreamAudio) -> None:
        """Write one frame of the current segment."""
        frame = pb.AudioFrame(
            session_id=self._session_id,
            audio_pcm16=audio.audio_pcm16,
            is_last=audio.is_last,
            language=audio.language or "",
            initial_prompt=audio.prompt or "",
            hot_words=list(audio.hot_words),
            segment_id=audio.segment_id,
            enable_partials=audio.enable_partials,
            speaker_paused=audio.speaker_paused,
        )
        try:
            await self._call.write(frame)
        except (grpc.aio.AioRpcError, grpc.aio.UsageError) as exc:
            raise self._broken(exc) from exc

    async def transcripts(self) -> AsyncIterator[StreamTranscript]:
        """Partial and final transcripts as the worker produces them."""
        try:
            async for event in self._call:
                yield StreamTranscript(
                    kind=_KIND[event.type],
                    segment_id=event.segment_id,
                    text=event.text,
                    start_ms=event.start_ms,
                    end_ms=event.end_ms,
                    language=event.language,
                    confidence=event.confidence,
                    words=tuple(Word(w.word, w.start, w.end, w.probability) for w in event.words),
                )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED and self._closed:
                return
            raise self._broken(exc) from exc

    async def close(self) -> None:
        """End the call; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._worker.end_request(self._generation)
        self._call.cancel()

    def _broken(self, exc: Exception) -> Exception:
        if isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
            trailers = dict(exc.trailing_metadata() or ())
            param = trailers.get("theo-param")
            return InvalidRequestError(
                exc.details() or "invalid", param=str(param) if param else None
            )
        # Anything else breaks the stream; a write to a reset connection even reports
        # INTERNAL, so the status cannot tell a dead worker from an engine failure.
        log.warning("worker_stream_broken", worker_id=self._worker.worker_id, error=str(exc))
        return WorkerCrashError(
            f"The worker for '{self._worker.model_name}' stopped during the session."
        )
