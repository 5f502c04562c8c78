"""A bidirectional transcription stream to one worker, hiding gRPC from the session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from theo.errors import TheoError
from theo.types import StreamAudio, StreamTranscript
from theo.wire.stt_realtime import frame_to_proto, transcript_from_proto
from theo.workers.handle import WorkerHandle
from theo.workers.rpc import rpc_failures


class WorkerStream:
    """One session's TranscribeStream call: send audio, iterate transcripts.

    A broken stream (the worker died) surfaces as :class:`WorkerCrashError` from
    :meth:`send` or :meth:`transcripts`, at once: the stream break is the detection. A
    setting the worker refuses ends the stream with :class:`InvalidRequestError`.
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
        """Write one frame of the current segment.

        Raises:
            WorkerCrashError: the stream broke.
            InvalidRequestError: the worker refused a setting of the stream.
            asyncio.InvalidStateError: the call had already ended (its reader says why).
        """
        with rpc_failures(self._worker, stream=True):
            await self._call.write(frame_to_proto(audio, self._session_id))

    async def transcripts(self) -> AsyncIterator[StreamTranscript]:
        """Partial and final transcripts as the worker produces them; ends once closed."""
        try:
            with rpc_failures(self._worker, stream=True):
                async for event in self._call:
                    yield transcript_from_proto(event)
        except TheoError:
            if self._closed:
                return  # the end of a call this side cancelled
            raise

    async def close(self) -> None:
        """End the call; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._worker.end_request(self._generation)
        self._call.cancel()
