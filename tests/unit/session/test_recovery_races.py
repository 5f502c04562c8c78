"""Crash recovery in the windows where it used to break: the real WorkerLink and
WorkerStream over calls that behave as grpcio's do, one worker restarted as the manager
restarts it.

Each final's text is ``"<segment>:<bytes>"`` (see ``GrpcCall``): exactly which audio
reached the worker that answered.
"""

from __future__ import annotations

import asyncio

from tests.unit.session.fakes import GrpcCall, RestartingScheduler, eventually
from theo.errors import TheoError
from theo.session.ring_buffer import RingBuffer
from theo.session.worker_link import LinkCallbacks, SessionFailedError, WorkerLink
from theo.types import StreamAudio, StreamTranscript, TranscriptKind

# Longer than any test: a worker that looks up is never mistaken for one that did not die.
DEATH_NOTICE_S = 30.0


class Recorder:
    """What the link told its session."""

    def __init__(self, *, fail_on_final: bool = False) -> None:
        self.transcripts: list[StreamTranscript] = []
        self.interrupted: list[int] = []
        self.recovered: list[list[int]] = []
        self.failed: list[TheoError] = []
        self._fail_on_final = fail_on_final

    def callbacks(self) -> LinkCallbacks:
        async def transcript(t: StreamTranscript) -> None:
            if self._fail_on_final and t.kind == TranscriptKind.FINAL:
                raise RuntimeError("a bug in the session")
            self.transcripts.append(t)

        async def interrupted(resume: int) -> None:
            self.interrupted.append(resume)

        async def recovered(segments: list[int]) -> None:
            self.recovered.append(segments)

        async def failed(error: TheoError) -> None:
            self.failed.append(error)

        return LinkCallbacks(transcript, interrupted, recovered, failed)

    def finals(self) -> list[str]:
        return [t.text for t in self.transcripts if t.kind == TranscriptKind.FINAL]


def _audio(segment: int, size: int, *, is_last: bool = False) -> StreamAudio:
    return StreamAudio(segment_id=segment, audio_pcm16=b"\x01\x02" * (size // 2), is_last=is_last)


def _link(
    scheduler: RestartingScheduler, recorder: Recorder, death_notice_s: float = DEATH_NOTICE_S
) -> WorkerLink:
    link = WorkerLink(
        "s",
        "m",
        scheduler,  # type: ignore[arg-type]
        RingBuffer(320_000),
        recorder.callbacks(),
        recovery_timeout_s=60,
        death_notice_s=death_notice_s,
    )
    link.start()
    return link


async def _sent_at_once(link: WorkerLink, audio: StreamAudio) -> None:
    """``send`` must not wait for the worker while the stream is down."""
    async with asyncio.timeout(1):
        await link.send(audio)


async def test_a_crash_between_segments_is_noticed_and_the_next_goes_to_the_new_worker() -> None:
    scheduler = RestartingScheduler()
    recorder = Recorder()
    link = _link(scheduler, recorder)
    await link.send(_audio(1, 3000, is_last=True))
    await eventually(lambda: recorder.finals() == ["1:3000"])

    scheduler.kill()  # the session is silent: no audio in flight, only the open stream
    await eventually(lambda: recorder.interrupted)
    assert recorder.interrupted == [2] and link.recovering
    scheduler.restart()
    await eventually(lambda: recorder.recovered)
    assert recorder.recovered == [[]]  # nothing was uncommitted
    await link.send(_audio(2, 1000, is_last=True))
    await eventually(lambda: len(recorder.finals()) == 2)

    assert recorder.finals() == ["1:3000", "2:1000"]
    assert scheduler.calls[1].received == {2: 1000}
    assert not recorder.failed
    await link.close()


async def test_a_stream_ending_quietly_is_a_break_not_a_silent_stall() -> None:
    scheduler = RestartingScheduler()
    recorder = Recorder()
    link = _link(scheduler, recorder, death_notice_s=0.05)
    await link.send(_audio(1, 2000))
    scheduler.calls[0].end_quietly()  # an OK status: no error, no transcript, nothing
    await eventually(lambda: recorder.recovered)

    assert recorder.interrupted == [1]
    await link.send(_audio(1, 0, is_last=True))
    await eventually(recorder.finals)
    # The worker did not die (it is reused after the death notice) and got it all again.
    assert recorder.finals() == ["1:2000"]
    await link.close()


async def test_a_channel_closed_under_an_idle_stream_is_a_break() -> None:
    scheduler = RestartingScheduler()
    recorder = Recorder()
    link = _link(scheduler, recorder)
    await link.send(_audio(1, 1000, is_last=True))
    await eventually(recorder.finals)

    # The manager noticed the death first: the call is cancelled, a bare CancelledError.
    scheduler.notice()
    await eventually(lambda: recorder.interrupted)
    scheduler.restart()
    await eventually(lambda: recorder.recovered)
    await link.send(_audio(2, 500, is_last=True))
    await eventually(lambda: len(recorder.finals()) == 2)

    assert recorder.interrupted == [2] and recorder.finals() == ["1:1000", "2:500"]
    await link.close()


async def test_a_crash_while_the_stream_reopens_cannot_hang_the_session() -> None:
    # The restarted worker dies before the new call's headers go out: grpcio would hold
    # that first write forever once the manager closes the channel.
    reopened = GrpcCall(headers=False)
    scheduler = RestartingScheduler(GrpcCall(), reopened)
    recorder = Recorder()
    link = _link(scheduler, recorder)
    await link.send(_audio(1, 4000))
    scheduler.kill()
    await eventually(lambda: recorder.interrupted)
    scheduler.restart()
    await eventually(lambda: reopened.writes_waiting)  # the replay waits for the headers
    await _sent_at_once(link, _audio(1, 1000))  # the session is never held up meanwhile

    scheduler.kill()
    await eventually(lambda: len(recorder.interrupted) == 2)
    scheduler.restart()
    await eventually(lambda: recorder.recovered)
    await link.send(_audio(1, 0, is_last=True))
    await eventually(recorder.finals)

    assert recorder.interrupted == [1, 1]  # each break of a stream, same resume point
    assert recorder.recovered == [[1]]
    assert recorder.finals() == ["1:5000"]  # the third worker got all of it, once
    assert len(scheduler.opened) == 3 and not recorder.failed
    await link.close()


async def test_a_crash_during_the_replay_waits_for_the_process_after_the_one_that_failed() -> None:
    # The new worker dies on the second replayed chunk, before the manager notices.
    replay = GrpcCall(die_at_write=1)
    scheduler = RestartingScheduler(GrpcCall(), replay)
    recorder = Recorder()
    link = _link(scheduler, recorder)
    await link.send(_audio(1, 40_000))  # 1.25 s: three chunks when sent again
    scheduler.kill()
    await eventually(lambda: recorder.interrupted)
    scheduler.restart()
    await eventually(lambda: len(recorder.interrupted) == 2)
    await eventually(lambda: len(scheduler.waits) == 2)

    # The dying process still looks ready; the link waits for the next one, not on it.
    [_, replay_stream] = scheduler.opened[1]
    assert scheduler.waits[-1] is replay_stream
    await _sent_at_once(link, _audio(1, 2000, is_last=True))
    assert len(scheduler.opened) == 2
    scheduler.notice()
    scheduler.restart()
    await eventually(recorder.finals)

    assert recorder.interrupted == [1, 1]
    assert recorder.finals() == ["1:42000"]
    assert scheduler.calls[2].received == {1: 42_000}
    assert recorder.recovered == [[1]] and not recorder.failed
    await link.close()


async def test_a_crash_while_waiting_for_the_worker_is_the_same_outage() -> None:
    scheduler = RestartingScheduler()
    recorder = Recorder()
    link = _link(scheduler, recorder)
    await link.send(_audio(1, 3000))
    scheduler.kill()
    await eventually(lambda: recorder.interrupted)

    scheduler.spawn()  # loading its model...
    scheduler.worker.transition(scheduler.worker.state.CRASHED)  # ...and dead again
    await _sent_at_once(link, _audio(1, 1000))
    scheduler.spawn()
    assert not recorder.recovered and len(scheduler.opened) == 1
    scheduler.ready()
    await eventually(lambda: recorder.recovered)
    await link.send(_audio(1, 0, is_last=True))
    await eventually(recorder.finals)

    assert recorder.interrupted == [1]  # no stream broke a second time
    assert recorder.finals() == ["1:4000"]
    await link.close()


async def test_two_crashes_in_quick_succession_lose_and_repeat_nothing() -> None:
    scheduler = RestartingScheduler()
    recorder = Recorder()
    link = _link(scheduler, recorder)
    await link.send(_audio(1, 1000, is_last=True))
    await link.send(_audio(2, 2000))
    await eventually(recorder.finals)
    scheduler.kill()
    await eventually(lambda: recorder.interrupted)
    scheduler.restart()
    await eventually(lambda: recorder.recovered)
    scheduler.kill()  # right after the replay
    await eventually(lambda: len(recorder.interrupted) == 2)
    await _sent_at_once(link, _audio(2, 1000, is_last=True))
    await _sent_at_once(link, _audio(3, 500, is_last=True))
    scheduler.restart()
    await eventually(lambda: len(recorder.finals()) == 3)

    assert recorder.interrupted == [2, 2]
    assert recorder.recovered == [[2], [2, 3]]
    assert recorder.finals() == ["1:1000", "2:3000", "3:500"]
    assert [t.segment_id for t in recorder.transcripts] == [1, 2, 3]
    await link.close()


async def test_breaks_of_an_idle_session_never_count_against_its_audio() -> None:
    scheduler = RestartingScheduler()
    recorder = Recorder()
    link = _link(scheduler, recorder)
    for kill in range(1, 6):  # more breaks than a session with audio may survive
        scheduler.kill()
        await eventually(lambda kill=kill: len(recorder.interrupted) == kill)  # type: ignore[misc]
        scheduler.restart()
        await eventually(lambda kill=kill: len(recorder.recovered) == kill)  # type: ignore[misc]
    await link.send(_audio(1, 1000, is_last=True))
    await eventually(recorder.finals)

    assert recorder.interrupted == [1] * 5 and recorder.finals() == ["1:1000"]
    assert not recorder.failed
    await link.close()


async def test_a_failing_task_of_the_link_fails_the_session_loudly() -> None:
    scheduler = RestartingScheduler()
    recorder = Recorder(fail_on_final=True)
    link = _link(scheduler, recorder)
    await link.send(_audio(1, 1000, is_last=True))
    await eventually(lambda: recorder.failed)

    [error] = recorder.failed
    assert isinstance(error, SessionFailedError) and "RuntimeError" in error.message
    await link.send(_audio(2, 1000))  # ignored: the session is over
    await link.close()


async def test_close_during_a_hung_reopen_returns_and_keeps_the_callers_cancellation() -> None:
    scheduler = RestartingScheduler(GrpcCall(), GrpcCall(headers=False))
    recorder = Recorder()
    link = _link(scheduler, recorder)
    await link.send(_audio(1, 1000))
    scheduler.kill()
    scheduler.restart()
    await eventually(lambda: len(scheduler.opened) == 2 and scheduler.calls[1].writes_waiting)

    async with asyncio.timeout(1):
        await link.close()
    assert all(call.done for call in scheduler.calls)

    # A caller cancelled while it closes the link is cancelled, not returned to.
    other = _link(RestartingScheduler(), Recorder())
    closing = asyncio.create_task(other.close())
    closing.cancel()
    await asyncio.wait({closing})
    assert closing.cancelled()
