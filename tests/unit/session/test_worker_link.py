"""WorkerLink recovery with a scripted worker: replay from the ring buffer, no duplicates.

The real :class:`WorkerStream` runs over a fake gRPC call; the fake "engine" answers each
segment's ``is_last`` with a final whose text counts the bytes it received, so a test
can see exactly which audio reached the (restarted) worker.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest

from theo.errors import TheoError
from theo.session.ring_buffer import RingBuffer
from theo.session.worker_link import LinkCallbacks, SessionFailedError, WorkerLink
from theo.types import StreamAudio, StreamTranscript, TranscriptKind, WorkerState
from theo.wire.proto import stt_worker_pb2 as pb
from theo.workers.handle import WorkerHandle
from theo.workers.stt_stream import WorkerStream


def _rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "scripted")


class FakeCall:
    """A TranscribeStream call: counts bytes per segment, answers is_last with a final."""

    def __init__(self, replay_final_of: int | None = None, *, fail_on_audio: bool = False) -> None:
        self.frames: list[pb.AudioFrame] = []
        self.received: dict[int, int] = {}
        self.dead = False
        self.fail_on_audio = fail_on_audio
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        if replay_final_of is not None:  # a worker that (wrongly) repeats an old final
            self._final(replay_final_of)

    async def write(self, frame: pb.AudioFrame) -> None:
        if self.dead:
            raise _rpc_error(grpc.StatusCode.UNAVAILABLE)
        if self.fail_on_audio:  # the engine fails on this audio; the stream ends
            self.dead = True
            self._events.put_nowait(_rpc_error(grpc.StatusCode.INTERNAL))
            return
        self.frames.append(frame)
        received = self.received.get(frame.segment_id, 0) + len(frame.audio_pcm16)
        self.received[frame.segment_id] = received
        if frame.is_last:
            self._final(frame.segment_id)

    def _final(self, segment: int) -> None:
        event = pb.TranscriptEvent(
            type=pb.TRANSCRIPT_EVENT_TYPE_FINAL,
            segment_id=segment,
            text=f"{segment}:{self.received.get(segment, 0)}",
        )
        self._events.put_nowait(event)

    def partial(self, segment: int, text: str) -> None:
        event = pb.TranscriptEvent(
            type=pb.TRANSCRIPT_EVENT_TYPE_PARTIAL, segment_id=segment, text=text
        )
        self._events.put_nowait(event)

    def kill(self) -> None:
        self.dead = True
        self._events.put_nowait(_rpc_error(grpc.StatusCode.UNAVAILABLE))

    def cancel(self) -> None:
        self._events.put_nowait(_rpc_error(grpc.StatusCode.CANCELLED))

    def __aiter__(self) -> Any:
        return self._iterate()

    async def _iterate(self) -> Any:
        while True:
            item = await self._events.get()
            if isinstance(item, Exception):
                raise item
            yield item


class FakeScheduler:
    """One worker; ``restart()`` brings a new process generation up."""

    def __init__(self, *calls: FakeCall) -> None:
        self.worker = WorkerHandle("stt-m", "m", Path("/m"), "fake")
        self.worker.transition(WorkerState.READY)
        self.worker.generation = 1
        self.calls = list(calls)
        self.opened: list[FakeCall] = []
        self.come_back = True

    def open_stream(self, model: str, session_id: str, *, avoid: object = None) -> WorkerStream:
        call = self.calls.pop(0)
        self.opened.append(call)
        return WorkerStream(call, self.worker, session_id)

    def crash_and_restart(self) -> None:
        self.opened[-1].kill()
        self.worker.transition(WorkerState.CRASHED)

    def restart(self) -> None:
        self.worker.generation += 1
        self.worker.transition(WorkerState.STARTING)
        self.worker.transition(WorkerState.READY)

    async def wait_ready(
        self, model: str, timeout_s: float, *, replacing: WorkerStream | None = None
    ) -> bool:
        if not self.come_back:
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.worker.routable or (
            replacing is not None and replacing.served_by(self.worker)
        ):
            if loop.time() >= deadline:
                return False
            await self.worker.wait_for_change(deadline - loop.time())
        return True


class Recorder:
    def __init__(self) -> None:
        self.transcripts: list[StreamTranscript] = []
        self.interrupted: list[int] = []
        self.recovered: list[list[int]] = []
        self.failed: list[TheoError] = []
        self.changed = asyncio.Event()

    def callbacks(self) -> LinkCallbacks:
        async def transcript(t: StreamTranscript) -> None:
            self.transcripts.append(t)
            self.changed.set()

        async def interrupted(resume: int) -> None:
            self.interrupted.append(resume)
            self.changed.set()

        async def recovered(segments: list[int]) -> None:
            self.recovered.append(segments)
            self.changed.set()

        async def failed(error: TheoError) -> None:
            self.failed.append(error)
            self.changed.set()

        return LinkCallbacks(transcript, interrupted, recovered, failed)

    def finals(self) -> list[str]:
        return [t.text for t in self.transcripts if t.kind == TranscriptKind.FINAL]

    async def until(self, predicate: Any) -> None:
        """Wait (at most 5 s) until ``predicate()`` holds after some callback."""
        async with asyncio.timeout(5):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    async def wait_finals(self, count: int) -> None:
        await self.until(lambda: len(self.finals()) >= count)


def _audio(segment: int, size: int, *, is_last: bool = False) -> StreamAudio:
    return StreamAudio(segment_id=segment, audio_pcm16=b"\x01\x02" * (size // 2), is_last=is_last)


async def test_crash_mid_segment_replays_uncommitted_audio_once() -> None:
    first, second = FakeCall(), FakeCall(replay_final_of=1)
    scheduler = FakeScheduler(first, second)
    ring = RingBuffer(64_000)
    recorder = Recorder()
    link = WorkerLink("s", "m", scheduler, ring, recorder.callbacks(), recovery_timeout_s=5)
    link.start()
    for _ in range(3):
        await link.send(_audio(1, 1000))
    await link.send(_audio(1, 0, is_last=True))
    await recorder.wait_finals(1)
    assert recorder.finals() == ["1:3000"]
    assert link.wal.last.segment_id == 1 and ring.fence == ring.written == 3000

    await link.send(_audio(2, 1000))
    first.partial(2, "two")
    scheduler.crash_and_restart()
    await recorder.until(lambda: recorder.interrupted)
    assert recorder.interrupted == [2] and link.recovering
    await link.send(_audio(2, 500))  # while the worker is down: kept in the ring buffer only
    assert ring.uncommitted == 1500
    scheduler.restart()
    await recorder.until(lambda: recorder.recovered)
    assert recorder.recovered == [[2]] and not link.recovering
    await link.send(_audio(2, 700))
    await link.send(_audio(2, 0, is_last=True))
    await link.send(_audio(3, 300, is_last=True))
    await recorder.wait_finals(3)

    # segment 1's repeated final was dropped; segment 2 reached the new worker whole
    assert recorder.finals() == ["1:3000", "2:2200", "3:300"]
    assert [t.segment_id for t in recorder.transcripts] == [1, 2, 2, 3]
    assert second.received == {2: 2200, 3: 300}
    # the replayed segment is decoded as it would have been without the crash: no
    # earlier finals as its prompt (the worker uses none; measured, they cost words)
    assert {f.initial_prompt for f in second.frames if f.segment_id in (2, 3)} == {""}
    assert link.wal.last.segment_id == 3 and ring.uncommitted == 0
    await link.close()


async def test_a_segment_that_ended_during_the_outage_is_closed_by_the_replay() -> None:
    first, second = FakeCall(), FakeCall()
    scheduler = FakeScheduler(first, second)
    recorder = Recorder()
    link = WorkerLink(
        "s", "m", scheduler, RingBuffer(64_000), recorder.callbacks(), recovery_timeout_s=5
    )
    link.start()
    await link.send(_audio(1, 4000))
    scheduler.crash_and_restart()
    await recorder.until(lambda: recorder.interrupted)
    await link.send(_audio(1, 2000, is_last=True))
    await link.send(_audio(2, 1000))
    scheduler.restart()
    await recorder.wait_finals(1)
    await link.send(_audio(2, 0, is_last=True))
    await recorder.wait_finals(2)
    assert recorder.finals() == ["1:6000", "2:1000"]
    assert [f.is_last for f in second.frames if f.segment_id == 1][-1] is True
    await link.close()


async def test_no_worker_back_in_time_fails_the_session() -> None:
    first = FakeCall()
    scheduler = FakeScheduler(first)
    scheduler.come_back = False
    recorder = Recorder()
    link = WorkerLink(
        "s", "m", scheduler, RingBuffer(64_000), recorder.callbacks(), recovery_timeout_s=5
    )
    link.start()
    await link.send(_audio(1, 1000))
    scheduler.crash_and_restart()
    await recorder.until(lambda: recorder.failed)
    assert isinstance(recorder.failed[0], SessionFailedError)
    assert recorder.interrupted == [1]
    await link.send(_audio(1, 1000))  # ignored quietly: the session is over
    await link.close()


async def test_a_worker_that_keeps_failing_on_the_audio_ends_the_session() -> None:
    calls = [FakeCall(fail_on_audio=True) for _ in range(4)]
    scheduler = FakeScheduler(*calls)
    recorder = Recorder()
    link = WorkerLink(
        "s",
        "m",
        scheduler,
        RingBuffer(64_000),
        recorder.callbacks(),
        recovery_timeout_s=5,
        death_notice_s=0.05,  # the worker never dies: it is reused after this
    )
    link.start()
    await link.send(_audio(1, 1000))
    await recorder.until(lambda: recorder.failed)
    assert isinstance(recorder.failed[0], SessionFailedError)
    assert recorder.interrupted == [1, 1, 1]  # reported, retried; the fourth break is fatal
    assert len(scheduler.opened) == 4  # the first stream and three replays, then it gives up
    await link.close()


def test_ring_buffer_full_is_refused_before_the_worker_sees_it() -> None:
    async def scenario() -> None:
        scheduler = FakeScheduler(FakeCall())
        link = WorkerLink(
            "s", "m", scheduler, RingBuffer(1000), Recorder().callbacks(), recovery_timeout_s=5
        )
        link.start()
        await link.send(_audio(1, 800))
        with pytest.raises(RuntimeError, match="do not fit"):
            await link.send(_audio(1, 400))
        assert scheduler.opened[0].received == {1: 800}
        await link.close()

    asyncio.run(scenario())
