"""A session's link to its worker: segment audio out, transcripts in, crashes survived.

Segment audio is kept until its final is in, and each stream is sent only what it has
not had yet (:mod:`theo.session.uncommitted`).

When the stream breaks (the worker died: the break is the detection, no polling), the
link stops sending at once: frames that arrive meanwhile only go to the ring buffer and
never wait for the worker. One recovery task reports the break, waits for a worker that
is not the process the broken stream ran on, opens a new stream and sends every
uncommitted segment again, in order, with the audio that arrived meanwhile, until it has
caught up; only then does live audio go to it. A stream that breaks while it is being
caught up is one more break: it is reported too, and the next worker awaited is the one
after the process that just failed. Finals of segments the WAL already holds are
dropped, so nothing is lost and nothing repeated. Every break while uncommitted audio is
held counts; breaking more than three times before any final means the worker fails on
this audio, and the session fails.

A worker that refuses one of the session's settings (INVALID_ARGUMENT naming the field,
e.g. a language the engine does not know) also ends the stream, but the worker is fine:
the session corrects the setting, and the link opens a new stream at once and sends the
uncommitted segments again with the corrected setting. Segments no correction can save
are given up with an empty final, so the session always goes on.

Nothing here ends silently: a task of the link that fails on an unexpected error fails
the session (``failed``), so a session never stalls without saying so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from theo.errors import InvalidRequestError, ModelUnavailableError, TheoError, WorkerCrashError
from theo.logging import get_logger
from theo.session.ring_buffer import RingBuffer
from theo.session.uncommitted import Correction, Route, UncommittedAudio
from theo.session.wal import SessionWAL
from theo.types import StreamAudio, StreamTranscript, TranscriptKind
from theo.workers.scheduler import Scheduler
from theo.workers.stt_stream import WorkerStream

__all__ = ["Correction", "LinkCallbacks", "SessionFailedError", "WorkerLink"]

log = get_logger("session.worker_link")

_MAX_BREAKS_WITHOUT_PROGRESS = 3
# A worker ready one moment and gone the next: open again this many times, then give up.
_MAX_FAILED_OPENS = 3
# A correction that the worker refuses again and again would loop: give the audio up.
_MAX_REJECTIONS_WITHOUT_PROGRESS = 3
# The manager sees a worker's death within milliseconds. A worker still up this long
# after its stream broke did not die (an engine error, a reset connection): reuse it.
_DEATH_NOTICE_S = 2.0


class SessionFailedError(TheoError):
    """The session cannot continue: no worker came back in time, the worker kept failing
    on its audio, or the link itself failed."""


@dataclass(frozen=True, slots=True)
class LinkCallbacks:
    """How the link reports to its session."""

    transcript: Callable[[StreamTranscript], Awaitable[None]]
    """A partial or final of an uncommitted segment (duplicates are already dropped)."""
    interrupted: Callable[[int], Awaitable[None]]
    """A stream broke; recovery starts from this segment id (once per break)."""
    recovered: Callable[[list[int]], Awaitable[None]]
    """A new stream carries the session again; these segments were sent again."""
    failed: Callable[[TheoError], Awaitable[None]]
    """The session cannot continue (no worker came back, or the worker rejected it)."""
    rejected: Callable[[InvalidRequestError], Awaitable[Correction | None]] | None = None
    """The worker refused a setting (the error names it in ``param``); returns how to
    correct the uncommitted segments before they are sent again, or None to give them up
    (each then gets an empty final). Without it, every rejection gives the segments up."""


class WorkerLink:
    """Owns the worker stream, the ring buffer's segment map and the WAL of one session."""

    def __init__(
        self,
        session_id: str,
        model: str,
        scheduler: Scheduler,
        ring: RingBuffer,
        callbacks: LinkCallbacks,
        *,
        recovery_timeout_s: float,
        death_notice_s: float = _DEATH_NOTICE_S,
    ) -> None:
        self._session_id = session_id
        self._model = model
        self._scheduler = scheduler
        self._callbacks = callbacks
        self._recovery_timeout_s = recovery_timeout_s
        self._death_notice_s = death_notice_s
        self._audio = UncommittedAudio(ring, session_id)
        self._route: Route | None = None  # the stream carrying live audio; None while down
        self._reader: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._breaks_without_progress = 0
        self._rejections_without_progress = 0
        self._closed = False

    @property
    def wal(self) -> SessionWAL:
        """The session's write-ahead log of committed segments."""
        return self._audio.wal

    @property
    def recovering(self) -> bool:
        """Whether the stream is broken and being re-established."""
        return self._recovery is not None

    def pending_bytes(self, segment_id: int) -> int:
        """Audio of an uncommitted segment held in the ring buffer."""
        return self._audio.pending_bytes(segment_id)

    def start(self) -> None:
        """Open the stream on a ready worker.

        Raises:
            ModelUnavailableError: no worker of the model is ready.
        """
        self._attach(Route(self._scheduler.open_stream(self._model, self._session_id)))

    async def send(self, audio: StreamAudio) -> None:
        """Keep ``audio`` in the ring buffer and send it on, unless the stream is down.

        Never waits for a recovery: while the stream is down the audio is only kept, and
        the new stream is sent it before it carries live audio.

        Raises:
            RingBufferFullError: the audio does not fit (the caller checks ``free`` first).
        """
        if self._closed or not self._audio.record(audio):
            return
        route = self._route
        if route is None:
            return  # the recovery carries it
        try:
            await self._audio.flush(route)
        except (WorkerCrashError, InvalidRequestError) as exc:
            self._broken(route.stream, exc)

    async def close(self) -> None:
        """Stop the stream and any recovery; idempotent."""
        self._closed = True
        current = asyncio.current_task()
        tasks = [
            t
            for t in (self._recovery, self._reader)
            if t is not None and t is not current and not t.done()
        ]
        for task in tasks:
            task.cancel()
        if tasks:
            # Not ``await task``: that would also swallow a cancellation of the caller.
            await asyncio.wait(tasks)
        if self._route is not None:
            await self._route.stream.close()

    # ------------------------------------------------------------------ receiving

    def _attach(self, route: Route) -> None:
        self._route = route
        self._reader = asyncio.create_task(
            self._guarded(self._read(route.stream)), name=f"read-{self._session_id}"
        )

    async def _read(self, stream: WorkerStream) -> None:
        try:
            async for transcript in stream.transcripts():
                await self._deliver(transcript)
        except (WorkerCrashError, InvalidRequestError) as exc:
            self._broken(stream, exc)
        except TheoError as exc:
            await self._fail(exc)
        else:
            # Only a stream this link closed may end quietly; any other end is a break.
            self._broken(stream, WorkerCrashError(f"The stream to '{self._model}' ended."))

    async def _deliver(self, transcript: StreamTranscript) -> None:
        if not self._audio.expects(transcript.segment_id):
            return  # a duplicate from a replay, or a segment this session never sent
        if transcript.kind == TranscriptKind.FINAL:
            self._audio.commit(transcript.segment_id)
            self._breaks_without_progress = 0
            self._rejections_without_progress = 0
        await self._callbacks.transcript(transcript)

    # ------------------------------------------------------------------ recovery

    def _broken(self, stream: WorkerStream, error: TheoError) -> None:
        """The carrying stream ended: start one recovery (later reports are ignored).

        Reports of a stream that no longer carries the session (replaced, or closed here)
        are stale: the recovery in progress, or the one that replaced it, owns the case.
        """
        route = self._route
        if self._closed or route is None or stream is not route.stream:
            return
        self._route = None
        self._recovery = asyncio.create_task(
            self._guarded(self._recover(stream, error)), name=f"recover-{self._session_id}"
        )

    async def _recover(self, broken: WorkerStream, error: TheoError) -> None:
        """Carry the session on a new stream after ``broken`` ended with ``error``."""
        started = time.monotonic()
        deadline = started + self._recovery_timeout_s
        reported = False
        while True:
            await broken.close()
            stream: WorkerStream | None = None
            if isinstance(error, InvalidRequestError):
                await self._settle_rejection(error)
                # The worker that refused is alive and ready: no need to wait for it.
                stream = self._open(None)
            if stream is None:
                # A break, or a rejection after which no worker was ready any more.
                if not await self._report_break(broken):
                    return
                reported = True
                stream = await self._open_when_ready(broken, deadline)
                if stream is None:
                    return
            route = Route(stream)
            try:
                replayed = await self._audio.catch_up(route)
            except (WorkerCrashError, InvalidRequestError) as exc:
                # The new stream ended too: wait for the process after this one.
                broken, error = stream, exc
                continue
            except BaseException:
                await stream.close()
                raise
            self._recovery = None
            self._attach(route)
            if not reported:
                log.info("session_reopened", session_id=self._session_id, segments=replayed)
                return
            log.info(
                "session_recovered",
                session_id=self._session_id,
                segments=replayed,
                worker_id=stream.worker_id,
                seconds=round(time.monotonic() - started, 3),
            )
            await self._callbacks.recovered(replayed)
            return

    async def _report_break(self, broken: WorkerStream) -> bool:
        """Report one break; False when it was one too many (the session failed)."""
        resume = self.wal.resume_segment_id
        if self._audio.held:
            # Breaks of an idle session say nothing about its audio.
            self._breaks_without_progress += 1
        log.warning(
            "session_stream_broken",
            session_id=self._session_id,
            resume_segment=resume,
            worker_id=broken.worker_id,
        )
        if self._breaks_without_progress > _MAX_BREAKS_WITHOUT_PROGRESS:
            # Breaking again and again before any final means the worker fails on this audio.
            await self._fail(
                SessionFailedError(
                    f"The worker for '{self._model}' stopped {self._breaks_without_progress} "
                    "times on this session's audio without a final; the session cannot continue."
                )
            )
            return False
        await self._callbacks.interrupted(resume)
        return True

    def _open(self, avoid: WorkerStream | None) -> WorkerStream | None:
        """A new stream (not on ``avoid``'s process while another worker is ready)."""
        try:
            return self._scheduler.open_stream(self._model, self._session_id, avoid=avoid)
        except ModelUnavailableError:
            return None

    async def _open_when_ready(self, broken: WorkerStream, deadline: float) -> WorkerStream | None:
        """A stream on a worker other than ``broken``'s process; None if the session failed."""
        for _ in range(_MAX_FAILED_OPENS):
            if not await self._wait_for_worker(broken, deadline):
                break
            stream = self._open(broken)
            if stream is not None:
                return stream
        await self._fail(
            SessionFailedError(
                f"The worker for '{self._model}' could not resume the session "
                f"(waited up to {self._recovery_timeout_s:.0f} s); the session cannot continue."
            )
        )
        return None

    async def _wait_for_worker(self, broken: WorkerStream, deadline: float) -> bool:
        """Wait for a restarted worker, or for evidence that the old one did not die."""
        scheduler, model = self._scheduler, self._model
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if await scheduler.wait_ready(
            model, min(remaining, self._death_notice_s), replacing=broken
        ):
            return True
        remaining = deadline - time.monotonic()
        return remaining > 0 and await scheduler.wait_ready(model, remaining)

    async def _settle_rejection(self, error: InvalidRequestError) -> None:
        """Correct the refused setting in the uncommitted segments, or give them up."""
        log.info(
            "session_setting_rejected",
            session_id=self._session_id,
            param=error.param,
            detail=error.message,
        )
        self._rejections_without_progress += 1
        correction = None
        if self._callbacks.rejected is not None:
            correction = await self._callbacks.rejected(error)
        if self._rejections_without_progress > _MAX_REJECTIONS_WITHOUT_PROGRESS:
            correction = None
        for segment in self._audio.correct(correction):
            await self._callbacks.transcript(
                StreamTranscript(kind=TranscriptKind.FINAL, segment_id=segment, text="")
            )

    # ------------------------------------------------------------------ failure

    async def _fail(self, error: TheoError) -> None:
        if self._recovery is asyncio.current_task():
            self._recovery = None
        self._closed = True
        await self._callbacks.failed(error)

    async def _guarded(self, work: Awaitable[None]) -> None:
        """Run one of the link's tasks: an unexpected error fails the session, loudly."""
        try:
            await work
        except Exception as exc:
            log.exception("session_link_failed", session_id=self._session_id)
            if not self._closed:
                await self._fail(
                    SessionFailedError(
                        f"The session's link to '{self._model}' failed ({type(exc).__name__}); "
                        "the session cannot continue."
                    )
                )
