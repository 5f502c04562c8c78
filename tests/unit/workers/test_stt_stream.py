"""WorkerStream: how a realtime call ends is always known and always said, never waited on.

Most cases run over ``GrpcCall`` (a call that behaves as grpcio's where it matters); the
first one runs over a real grpcio channel to an in-process server, where grpcio itself
holds a first write forever once its call is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.unit.session.fakes import GrpcCall, rpc_error
from theo.errors import InvalidRequestError, TheoError, WorkerCrashError
from theo.types import StreamAudio, StreamTranscript, WorkerState
from theo.wire.proto import stt_worker_pb2 as pb
from theo.wire.proto import stt_worker_pb2_grpc as pb_grpc
from theo.workers.handle import WorkerHandle
from theo.workers.stt_stream import WorkerStream

FRAME = StreamAudio(segment_id=1, audio_pcm16=b"\x00\x01" * 160)


def _worker() -> WorkerHandle:
    worker = WorkerHandle("stt-m", "m", Path("/m"), "fake")
    worker.transition(WorkerState.READY)
    return worker


async def _all(stream: WorkerStream) -> list[StreamTranscript]:
    async with asyncio.timeout(2):
        return [t async for t in stream.transcripts()]


class _Listening(pb_grpc.STTWorkerServicer):
    """A worker that takes a stream's frames and answers nothing."""

    async def TranscribeStream(  # noqa: N802 - name fixed by the generated gRPC base class
        self, request_iterator: AsyncIterator[pb.AudioFrame], context: Any
    ) -> AsyncIterator[pb.TranscriptEvent]:
        async for _ in request_iterator:
            pass
        return
        yield  # an async generator, as the real servicer


async def test_a_first_write_never_outlives_its_call_on_a_real_channel() -> None:
    server = grpc.aio.server()
    pb_grpc.add_STTWorkerServicer_to_server(_Listening(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    worker = _worker()
    worker.port = port
    try:
        # The manager closes the channel at some turn of the loop after the stream opened:
        # before, while or after its headers go out. The write never waits beyond that.
        for turns in range(8):
            worker.open_channel()
            assert worker.stub is not None
            stream = WorkerStream(worker.stub.TranscribeStream(), worker, "s")
            send = asyncio.create_task(stream.send(FRAME))
            for _ in range(turns):
                await asyncio.sleep(0)
            await worker.close_channel()
            async with asyncio.timeout(2):
                [outcome] = await asyncio.gather(send, return_exceptions=True)
            assert outcome is None or isinstance(outcome, WorkerCrashError), (turns, outcome)
            with pytest.raises(WorkerCrashError):
                await _all(stream)
            await stream.close()
    finally:
        await server.stop(None)


async def test_a_first_write_held_for_headers_is_abandoned_when_the_call_is_cancelled() -> None:
    call = GrpcCall(headers=False)
    stream = WorkerStream(call, _worker(), "s")
    send = asyncio.create_task(stream.send(FRAME))
    await asyncio.sleep(0)
    call.cancel()  # the manager closed the dead worker's channel
    async with asyncio.timeout(2):
        with pytest.raises(WorkerCrashError):
            await send
    await stream.close()


async def test_a_call_that_ends_quietly_is_a_broken_stream() -> None:
    call = GrpcCall()
    stream = WorkerStream(call, _worker(), "s")
    await stream.send(FRAME)
    call.end_quietly()
    with pytest.raises(WorkerCrashError):
        await _all(stream)
    assert stream.ended
    with pytest.raises(WorkerCrashError):
        await stream.send(FRAME)
    await stream.close()


async def test_a_closed_channel_is_a_broken_stream_not_a_cancellation() -> None:
    call = GrpcCall()
    stream = WorkerStream(call, _worker(), "s")
    await stream.send(FRAME)
    await stream.send(StreamAudio(segment_id=1, audio_pcm16=b"", is_last=True))
    call.cancel()  # a bare CancelledError in the call's iteration
    received: list[StreamTranscript] = []
    with pytest.raises(WorkerCrashError):
        async with asyncio.timeout(2):
            async for transcript in stream.transcripts():
                received.append(transcript)
    # What the worker said before the break still comes, in order, then the break.
    assert [t.text for t in received] == ["1:320"]
    await stream.close()


async def test_a_refusal_is_what_a_later_write_reports() -> None:
    call = GrpcCall()
    stream = WorkerStream(call, _worker(), "s")
    await stream.send(FRAME)
    call.done = True
    call._events.put_nowait(rpc_error(grpc.StatusCode.INVALID_ARGUMENT))
    with pytest.raises(InvalidRequestError):
        await _all(stream)
    with pytest.raises(InvalidRequestError):
        await stream.send(FRAME)  # not the grpcio call's InvalidStateError
    await stream.close()


async def test_after_close_nothing_is_delivered_and_the_request_is_counted_done() -> None:
    worker = _worker()
    call = GrpcCall()
    stream = WorkerStream(call, worker, "s")
    assert worker.active_requests == 1
    await stream.send(FRAME)
    await stream.send(StreamAudio(segment_id=1, audio_pcm16=b"", is_last=True))
    await stream.close()
    assert await _all(stream) == []  # the final already queued is not delivered
    assert call.done and worker.active_requests == 0
    with pytest.raises(TheoError):
        await stream.send(FRAME)
    await stream.close()  # idempotent
