"""A bidirectional transcription stream to one worker, hiding gRPC from the session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from theo.errors import TheoError
from theo.logging import get_logger
from theo.types import StreamAudio, StreamTranscript
from theo.wire.errors import stream_lost
from theo.wire.proto import stt_worker_pb2 as pb
from theo.wire.stt_realtime import frame_to_proto, transcript_from_proto
from theo.workers.handle import WorkerHandle
from theo.workers.rpc import rpc_failures

log = get_logger("workers.stt_stream")


class WorkerStream:
    """One session's TranscribeStream call: send audio, iterate transcripts.

    The call is read from the moment it opens, so the stream always knows whether it
    has ended and why, whether or not anyone iterates :meth:`transcripts` yet. A broken
    stream (the worker died, or the manager closed its channel) surfaces as
    :class:`WorkerCrashError` from :meth:`send` and :meth:`transcripts`, at once: the
    stream break is the detection. A setting the worker refuses ends the stream with
    :class:`InvalidRequestError`. A call that ends without an error while still in use
    is broken too: the worker never ends a session's stream by itself.
    """

    def __init__(self, call: Any, worker: WorkerHandle, session_id: str) -> None:
        self._call = call
        self._worker = worker
        self._session_id = session_id
        self._generation = worker.begin_request(stream=True)
        self._closed = False
        self._error: TheoError | None = None
        self._ended = asyncio.Event()
        self._events: asyncio.Queue[StreamTranscript | None] = asyncio.Queue()
        # Whether a write went through: the call's headers are out, later writes cannot
        # wait for them (see _first_write).
        self._opened = False
        self._pump = asyncio.create_task(self._read_call(), name=f"call-{session_id}")

    @property
    def worker_id(self) -> str:
        """The worker serving this stream."""
        return self._worker.worker_id

    @property
    def ended(self) -> bool:
        """Whether the call is over (it broke, was refused, or was closed here)."""
        return self._ended.is_set()

    def served_by(self, worker: WorkerHandle) -> bool:
        """Whether this stream runs on ``worker``'s current process (not a restarted one)."""
        return worker is self._worker and worker.generation == self._generation

    async def send(self, audio: StreamAudio) -> None:
        """Write one frame of the current segment.

        Raises:
            WorkerCrashError: the stream broke (or was closed).
            InvalidRequestError: the worker refused a setting of the stream.
        """
        if self.ended:
            raise self._end_error()
        frame = frame_to_proto(audio, self._session_id)
        try:
            with rpc_failures(self._worker, stream=True):
                if self._opened:
                    await self._call.write(frame)
                else:
                    await self._first_write(frame)
                    self._opened = True
        except asyncio.InvalidStateError:
            # The call ended before this write; its reader is about to say why.
            await self._ended.wait()
            raise self._end_error() from None

    async def _first_write(self, frame: pb.AudioFrame) -> None:
        """The first write, abandoned if the call ends before it goes through.

        grpcio holds a call's first write until the call's headers are sent, and never
        releases it when the call is cancelled first (the manager closing a dead worker's
        channel, or :meth:`close`): the write would wait forever.
        """
        write = asyncio.ensure_future(self._call.write(frame))
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            await asyncio.wait({write, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not write.done():
                write.cancel()
        if not write.done():
            raise self._end_error()
        if write.cancelled():
            # Cancelled by grpcio itself (the call was cancelled), never by this task.
            raise self._end_error()
        write.result()

    async def transcripts(self) -> AsyncIterator[StreamTranscript]:
        """Partial and final transcripts as the worker produces them; ends once closed.

        Raises:
            WorkerCrashError: the stream broke (after the transcripts that came before).
            InvalidRequestError: the worker refused a setting of the stream.
        """
        while not self._closed:
            transcript = await self._events.get()
            if transcript is None or self._closed:
                break
            yield transcript
        if not self._closed:
            raise self._end_error()

    async def close(self) -> None:
        """End the call; safe to call more than once. Nothing is delivered after it."""
        if self._closed:
            return
        self._closed = True
        self._pump.cancel()
        self._finish(None)
        self._worker.end_request(self._generation, stream=True)
        self._call.cancel()

    async def _read_call(self) -> None:
        """Queue the call's transcripts until it ends; remember how it ended."""
        try:
            with rpc_failures(self._worker, stream=True):
                async for event in self._call:
                    self._events.put_nowait(transcript_from_proto(event))
        except TheoError as exc:
            self._finish(exc)
        except Exception:  # a message that cannot be read: the stream is of no use now
            log.exception("stream_read_failed", worker_id=self.worker_id)
            self._finish(stream_lost(self._worker.model_name))
        else:
            log.warning("stream_ended_unexpectedly", worker_id=self.worker_id)
            self._finish(stream_lost(self._worker.model_name))

    def _finish(self, error: TheoError | None) -> None:
        if self.ended:
            return
        self._error = error
        self._ended.set()
        self._events.put_nowait(None)

    def _end_error(self) -> TheoError:
        return self._error or stream_lost(self._worker.model_name)
