"""A session's link to its worker: segment audio out, transcripts in, crashes survived.

Every byte of segment audio sent to the worker is first written to the session's ring
buffer and stays there, behind the read fence, until the segment's final is accepted and
recorded in the WAL. When the worker stream breaks (the worker died: the break is the
detection, no polling), the link reports a recoverable interruption, waits for the
manager to restart the worker, opens a new stream and sends every uncommitted segment
again from the ring buffer, in order, closing the ones that had ended. Frames that
arrive meanwhile only go to the ring buffer: the replay carries them. Finals of
segments the WAL already holds are dropped, so nothing is lost and nothing repeated.

A worker that refuses one of the session's settings (INVALID_ARGUMENT naming the field,
e.g. a language the engine does not know) also ends the stream, but the worker is fine:
the session corrects the setting, and the link opens a new stream at once and sends the
uncommitted segments again with the corrected setting. Segments no correction can save
are given up with an empty final, so the session always goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from theo.errors import InvalidRequestError, ModelUnavailableError, TheoError, WorkerCrashError
from theo.logging import get_logger
from theo.session.ring_buffer import BYTES_PER_SECOND, RingBuffer
from theo.session.wal import SessionWAL
from theo.types import StreamAudio, StreamTranscript, TranscriptKind
from theo.workers.scheduler import Scheduler
from theo.workers.stt_stream import WorkerStream

Correction = Callable[[StreamAudio], StreamAudio]
"""Rewrites an uncommitted segment's settings before it is sent again."""

log = get_logger("session.worker_link")

_REPLAY_CHUNK_BYTES = BYTES_PER_SECOND // 2
_MAX_FAILED_REPLAYS = 3
_MAX_RECOVERIES_WITHOUT_PROGRESS = 3
# A correction that the worker refuses again and again would loop: give the audio up.
_MAX_REJECTIONS_WITHOUT_PROGRESS = 3
# The manager sees a worker's death within milliseconds. A worker still up this long
# after its stream broke did not die (an engine error, a reset connection): reuse it.
_DEATH_NOTICE_S = 2.0


class SessionFailedError(TheoError):
    """The worker did not come back in time; the session cannot continue."""


@dataclass(slots=True)
class _Pending:
    """An uncommitted segment: where its audio lies in the ring buffer, how it was sent."""

    start: int
    end: int
    options: StreamAudio
    ended: bool = False


@dataclass(frozen=True, slots=True)
class LinkCallbacks:
    """How the link reports to its session."""

    transcript: Callable[[StreamTranscript], Awaitable[None]]
    """A partial or final of an uncommitted segment (duplicates are already dropped)."""
    interrupted: Callable[[int], Awaitable[None]]
    """The stream broke; recovery starts from this segment id."""
    recovered: Callable[[list[int]], Awaitable[None]]
    """A new stream carries the session again; these segments were sent again."""
    failed: Callable[[TheoError], Awaitable[None]]
    """The session cannot continue (no worker came back, or the worker rejected it)."""
    context: Callable[[], str]
    """Recent final text, the prompt for segments sent again to a fresh worker."""
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
        self._ring = ring
        self._callbacks = callbacks
        self._recovery_timeout_s = recovery_timeout_s
        self._death_notice_s = death_notice_s
        self.wal = SessionWAL()
        self._pending: dict[int, _Pending] = {}
        self._stream: WorkerStream | None = None
        self._healthy = False
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._replay_prompts: dict[int, str] = {}
        self._recoveries_without_progress = 0
        self._rejections_without_progress = 0
        self._closed = False

    @property
    def recovering(self) -> bool:
        """Whether the stream is broken and being re-established."""
        return self._recovery is not None

    def pending_bytes(self, segment_id: int) -> int:
        """Audio of an uncommitted segment held in the ring buffer."""
        pending = self._pending.get(segment_id)
        return pending.end - pending.start if pending is not None else 0

    def start(self) -> None:
        """Open the stream on a ready worker.

        Raises:
            ModelUnavailableError: no worker of the model is ready.
        """
        self._attach(self._scheduler.open_stream(self._model, self._session_id))

    async def send(self, audio: StreamAudio) -> None:
        """Keep ``audio`` in the ring buffer and send it on, unless the stream is down.

        Raises:
            RingBufferFullError: the audio does not fit (the caller checks ``free`` first).
        """
        async with self._lock:
            if self.wal.is_committed(audio.segment_id):
                return  # the rest of a segment that was given up after a rejection
            pending = self._pending.get(audio.segment_id)
            if pending is None:
                start = self._ring.written
                pending = _Pending(start, start, audio)
                self._pending[audio.segment_id] = pending
            if audio.audio_pcm16:
                self._ring.write(audio.audio_pcm16)
                pending.end = self._ring.written
                pending.options = audio
            pending.ended = pending.ended or audio.is_last
            stream = self._stream
            if not self._healthy or stream is None:
                return  # the replay after recovery carries it
            prompt = self._replay_prompts.get(audio.segment_id)
            try:
                await stream.send(dataclasses.replace(audio, prompt=prompt) if prompt else audio)
            except WorkerCrashError:
                self._broken(stream)
            except InvalidRequestError as exc:
                self._rejected(stream, exc)
            except asyncio.InvalidStateError:
                # The call already ended: its reader reports why (crash or rejection), and
                # the audio, kept in the ring buffer, goes out with the replay.
                pass

    async def close(self) -> None:
        """Stop the stream and any recovery; idempotent."""
        self._closed = True
        current = asyncio.current_task()
        tasks = [t for t in (self._recovery, self._reader) if t is not None and t is not current]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, TheoError):
                await task
        if self._stream is not None:
            await self._stream.close()

    def _attach(self, stream: WorkerStream) -> None:
        self._stream = stream
        self._healthy = True
        self._reader = asyncio.create_task(self._read(stream), name=f"read-{self._session_id}")

    async def _read(self, stream: WorkerStream) -> None:
        try:
            async for transcript in stream.transcripts():
                await self._deliver(transcript)
        except WorkerCrashError:
            self._broken(stream)
        except InvalidRequestError as exc:
            self._rejected(stream, exc)
        except TheoError as exc:
            await self._callbacks.failed(exc)

    async def _deliver(self, transcript: StreamTranscript) -> None:
        segment = transcript.segment_id
        if self.wal.is_committed(segment) or segment not in self._pending:
            return  # a duplicate from a replay, or a segment this session never sent
        if transcript.kind == TranscriptKind.FINAL:
            del self._pending[segment]
            self._replay_prompts.pop(segment, None)
            fence = min((p.start for p in self._pending.values()), default=self._ring.written)
            self.wal.commit(segment, fence)
            self._ring.commit(fence)
            self._recoveries_without_progress = 0
            self._rejections_without_progress = 0
        await self._callbacks.transcript(transcript)

    def _broken(self, stream: WorkerStream) -> None:
        """The stream broke: start one recovery (later reports of the same break are ignored)."""
        if stream is not self._stream or self._recovery is not None or self._closed:
            return
        self._healthy = False
        self._recovery = asyncio.create_task(
            self._recover(stream), name=f"recover-{self._session_id}"
        )

    def _rejected(self, stream: WorkerStream, error: InvalidRequestError) -> None:
        """The worker refused a setting and ended the stream: correct it and reopen at once."""
        if stream is not self._stream or self._recovery is not None or self._closed:
            return
        self._healthy = False
        self._recovery = asyncio.create_task(
            self._reopen(stream, error), name=f"reopen-{self._session_id}"
        )

    async def _reopen(self, rejected: WorkerStream, error: InvalidRequestError) -> None:
        await rejected.close()
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
        replayed: list[int] = []
        async with self._lock:
            given_up = self._correct_pending(correction)
            try:
                # The worker that refused is alive and ready: no need to wait for it.
                stream = self._scheduler.open_stream(self._model, self._session_id)
                replayed = await self._replay(stream)
            except (WorkerCrashError, ModelUnavailableError):
                reopened = False
            else:
                reopened = True
                self._recovery = None
                self._attach(stream)
        for segment in given_up:
            await self._callbacks.transcript(
                StreamTranscript(kind=TranscriptKind.FINAL, segment_id=segment, text="")
            )
        if not reopened:
            # The worker went away meanwhile: recover as after a crash (this task stays
            # the link's recovery until that ends).
            await self._recover(rejected)
        else:
            log.info("session_reopened", session_id=self._session_id, segments=replayed)

    def _correct_pending(self, correction: Correction | None) -> list[int]:
        """Apply ``correction`` to the uncommitted segments, or give them all up.

        Returns the segments given up: they are committed (their audio released) and each
        is owed an empty final.
        """
        if correction is not None:
            for pending in self._pending.values():
                pending.options = correction(pending.options)
            return []
        given_up = sorted(self._pending)
        self._pending.clear()
        for segment in given_up:
            self._replay_prompts.pop(segment, None)
            if not self.wal.is_committed(segment):
                self.wal.commit(segment, self._ring.written)
        self._ring.commit(self._ring.written)
        if given_up:
            log.warning("session_segments_given_up", session_id=self._session_id, ids=given_up)
        return given_up

    async def _recover(self, broken: WorkerStream) -> None:
        started = time.monotonic()
        await broken.close()
        resume = self.wal.resume_segment_id
        self._recoveries_without_progress += 1
        log.warning("session_stream_broken", session_id=self._session_id, resume_segment=resume)
        # Breaking again and again before any final means the worker fails on this audio.
        retry = self._recoveries_without_progress <= _MAX_RECOVERIES_WITHOUT_PROGRESS
        if retry:
            await self._callbacks.interrupted(resume)
        deadline = started + self._recovery_timeout_s
        failed_replays = 0
        while retry:
            if not await self._wait_for_worker(broken, deadline):
                break
            async with self._lock:
                try:
                    stream = self._scheduler.open_stream(self._model, self._session_id)
                    replayed = await self._replay(stream)
                except (WorkerCrashError, ModelUnavailableError):
                    failed_replays += 1
                    if failed_replays >= _MAX_FAILED_REPLAYS:
                        break
                    continue
                self._recovery = None
                self._attach(stream)
            log.info(
                "session_recovered",
                session_id=self._session_id,
                segments=replayed,
                seconds=round(time.monotonic() - started, 3),
            )
            await self._callbacks.recovered(replayed)
            return
        self._recovery = None
        self._closed = True
        await self._callbacks.failed(
            SessionFailedError(
                f"The worker for '{self._model}' could not resume the session "
                f"(waited up to {self._recovery_timeout_s:.0f} s); the session cannot continue."
            )
        )

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

    async def _replay(self, stream: WorkerStream) -> list[int]:
        """Send every uncommitted segment again, in order; returns their ids.

        Raises:
            WorkerCrashError: the new stream broke too (it is closed).
        """
        try:
            return await self._send_pending(stream)
        except WorkerCrashError:
            await stream.close()
            raise
        except (InvalidRequestError, asyncio.InvalidStateError) as exc:
            # The new stream ended at once; to the caller that is one more failed attempt.
            await stream.close()
            raise WorkerCrashError(
                f"The worker for '{self._model}' ended the stream while it was resumed."
            ) from exc

    async def _send_pending(self, stream: WorkerStream) -> list[int]:
        context = self._callbacks.context()
        for segment, pending in self._pending.items():
            if context:
                # A fresh worker has no context of this session: give it the recent finals.
                self._replay_prompts.setdefault(segment, context)
            prompt = self._replay_prompts.get(segment)
            options = dataclasses.replace(pending.options, prompt=prompt, speaker_paused=False)
            audio = self._ring.read(pending.start, pending.end)
            for offset in range(0, len(audio), _REPLAY_CHUNK_BYTES):
                chunk = audio[offset : offset + _REPLAY_CHUNK_BYTES]
                await stream.send(dataclasses.replace(options, audio_pcm16=chunk, is_last=False))
            if pending.ended:
                await stream.send(dataclasses.replace(options, audio_pcm16=b"", is_last=True))
        return list(self._pending)
