"""One realtime transcription session, whatever its transport: audio and commands in,
typed events out.

Data flows one way: pushed frame -> backpressure -> segmenter (preprocessing + VAD, off
the loop) -> worker link (ring buffer, worker stream) -> transcripts -> post-processing
(finals only, off the loop) -> events, released in segment order by the outbox into the
session's event stream. The lifecycle (INIT, ACTIVE, SILENCE, HOLD, CLOSING, CLOSED) is a
state machine whose timeouts a timer task enforces, whether or not anyone consumes the
events (a phone call has no client to close it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping

import numpy as np

from theo.errors import InvalidRequestError, TheoError
from theo.logging import get_logger
from theo.session import errors
from theo.session.audio_format import AudioEncoding, InputFormat
from theo.session.backpressure import Admission, BackpressureController
from theo.session.barge_in import EchoCanceller
from theo.session.config import SessionConfig, check_supported
from theo.session.context import SessionContext
from theo.session.event_queue import EventStream
from theo.session.events import (
    CloseReason,
    ErrorEvent,
    FramesDropped,
    InputCleared,
    OutputAudio,
    RateLimit,
    SessionClosed,
    SessionCreated,
    SessionEvent,
    SessionHold,
    SessionLagging,
    SessionUpdated,
    TranscriptFinal,
)
from theo.session.live_config import LiveConfig
from theo.session.outbox import OrderedOutbox
from theo.session.ring_buffer import BYTES_PER_SECOND, RingBuffer
from theo.session.speak_request import SpeakRequest
from theo.session.speaker import MAX_AHEAD_S, Speaker
from theo.session.speech import SpeechPath
from theo.session.state import SessionState, SessionStateMachine
from theo.session.timer import StateTimer
from theo.session.transcripts import TranscriptEvents, ms
from theo.session.worker_link import Correction, LinkCallbacks, SessionFailedError, WorkerLink
from theo.types import StreamTranscript, TranscriptKind

log = get_logger("session")

_CLOSE_DRAIN_TIMEOUT_S = 30.0
# Besides its own audio, a frame may release up to 200 ms of pre-roll (and resampler delay).
_FRAME_MARGIN_S = 0.3
_RATE_LIMIT_MESSAGE = "Audio is arriving faster than real time; pause for delay_ms."
_DROPPED_MESSAGE = "Audio was dropped: it arrived too far ahead of real time."
_RING_FULL_MESSAGE = (
    "Audio was dropped: the session's buffer is full of speech still waiting for its "
    "final (the server is behind)."
)
_LAGGING_MESSAGE = (
    "The server is falling behind real time: this segment's final is {} ms overdue; it will come."
)


class RealtimeSession:
    """Owns one session's lifecycle, speech path, worker link and event order.

    Transports push audio and call the commands; they iterate the session
    (``async for event in session``) for its events, which end after
    :class:`~theo.session.events.SessionClosed` once the session is CLOSED. Commands
    raise domain errors for input they refuse; :meth:`report` turns one into an error
    event in order with the others.

    Args:
        session_id: the session's id, in its events and logs.
        context: the model, the scheduler and the server-wide limits.
        config: the initial configuration (validated, and checked against the model).
        paced_by_source: the audio comes at the pace of a real-time clock (a phone line),
            so it is never rate-limited or dropped as too fast: after a stall of the
            session it arrives in a burst that is not ahead of real time. The transport
            bounds what it queues instead.
    """

    def __init__(
        self,
        session_id: str,
        context: SessionContext,
        config: SessionConfig,
        *,
        paced_by_source: bool = False,
    ) -> None:
        self.session_id = session_id
        self._paced_by_source = paced_by_source
        self.context = context
        self.close_reason: CloseReason | None = None
        limits = context.limits
        self._live = LiveConfig(config, context.manifest.postprocessing.hot_words)
        self._events = EventStream()
        self._outbox = OrderedOutbox[SessionEvent](self._emit)
        self._transcripts = TranscriptEvents(context, self._outbox, lambda: self.config)
        self._machine = SessionStateMachine(config.timeouts())
        self._timer = StateTimer(self._machine, self._on_timeout)
        self._backpressure = BackpressureController(
            max_backlog_s=limits.max_backlog_s, rate_limit_after_s=limits.rate_limit_after_s
        )
        self._ring = RingBuffer.for_seconds(limits.ring_buffer_s)
        self._link = WorkerLink(
            session_id,
            context.model_name,
            context.scheduler,
            self._ring,
            LinkCallbacks(
                transcript=self._on_transcript,
                interrupted=self._on_interrupted,
                recovered=self._on_recovered,
                failed=self._on_failed,
                rejected=self._on_rejected,
            ),
            recovery_timeout_s=limits.recovery_timeout_s,
        )
        self._speech = SpeechPath(
            session_id, context, self._live, self._link, self._ring, self._transcripts, self._enter
        )
        self._speaker = Speaker(
            session_id,
            context.synthesizer,
            self._events,
            context.metrics,
            lambda: self.config,
            # A phone line's playout takes audio as fast as it comes: bound it by time.
            max_ahead_s=MAX_AHEAD_S if paced_by_source else None,
            on_audio=self._sent_audio,
            on_stopped=self._speech_stopped,
        )
        self._echo = EchoCanceller(config.input_sample_rate) if config.barge_in else None
        self._heard: tuple[int, float] = (0, time.monotonic())  # (position, when) of the last frame
        self._failure: TheoError | None = None
        self._closed = asyncio.Event()

    @property
    def config(self) -> SessionConfig:
        """The configuration in force."""
        return self._live.current

    @property
    def input_format(self) -> InputFormat:
        """The encoding and rate pushed audio must have."""
        config = self.config
        return InputFormat(AudioEncoding(config.input_audio_format), config.input_sample_rate)

    @property
    def state(self) -> SessionState:
        """Where the session is in its lifecycle."""
        return self._machine.state

    @property
    def accepting(self) -> bool:
        """Whether audio and commands are still taken (not CLOSING or CLOSED)."""
        return self._machine.state not in (SessionState.CLOSING, SessionState.CLOSED)

    @property
    def failure(self) -> TheoError | None:
        """Set when the session failed (its worker did not come back)."""
        return self._failure

    def __aiter__(self) -> AsyncIterator[SessionEvent]:
        """The session's events in order; iteration ends after the last one."""
        return aiter(self._events)

    async def wait_closed(self) -> None:
        """Return once the session is CLOSED."""
        await self._closed.wait()

    def report(self, error: TheoError) -> ErrorEvent:
        """Emit the error event for an input the session or its transport refused.

        Returns the event, so the transport can see whether the session goes on.
        """
        event = errors.rejection(error)
        self._events.emit(event)
        return event

    async def _emit(self, event: SessionEvent) -> None:
        if isinstance(event, TranscriptFinal) and event.text:
            position, heard_at = self._heard
            # When the final's last word was heard, on the monotonic clock.
            self._speaker.caller_spoke(heard_at - (position / 16 - event.end_ms) / 1000)
        self._events.emit(event)

    async def start(self) -> None:
        """Open the worker stream, announce the session and start its timeouts.

        Raises:
            ModelUnavailableError: no worker of the model is ready.
        """
        self._link.start()
        self._events.emit(SessionCreated(self.session_id, self.context.model_name, self.config))
        self._timer.start(name=f"timer-{self.session_id}")

    # ------------------------------------------------------------------ audio in

    async def push(self, audio: bytes) -> None:
        """Process one frame of audio in the session's :attr:`input_format`.

        Raises:
            InvalidRequestError: the frame does not hold whole samples (param ``audio``).
        """
        arrived = time.monotonic()
        audio_format = self.input_format
        audio_format.check(audio)
        if not audio or not self.accepting:
            return
        duration_s = audio_format.duration_s(audio)
        if not self._paced_by_source:
            admission = self._backpressure.admit(duration_s)
            self._report(admission)
            if not admission.accepted:
                return
        if self._ring.free < (duration_s + _FRAME_MARGIN_S) * BYTES_PER_SECOND:
            # Finals are late and the buffer holds only audio still waiting for them.
            self._report(
                Admission(False, dropped_ms=self._backpressure.drop(duration_s)),
                _RING_FULL_MESSAGE,
            )
            return
        samples = audio_format.decode(audio)
        if self._echo is not None:
            samples, caller = self._echo.clean(samples)
            if caller and self._speaker.speaking:
                log.info("barge_in", session_id=self.session_id)
                self._speaker.barge_in()
        elif self._speaker.muted():
            # Mute-on-speak: silence in its place keeps the session's clock on the
            # client's, and ends a segment the caller was speaking as silence would.
            samples = np.zeros_like(samples)
            self.context.metrics.muted_audio(duration_s)
        await self._speech.await_pause_words()
        async with self._speech.lock:
            events = await self._speech.analyse(samples)
            if not self.accepting:
                return  # closed (e.g. by a timeout) while the frame was being processed
            self._heard = (self._speech.position, arrived)
            await self._speech.apply(events)
        self._report_lag(arrived)

    def _report_lag(self, now: float) -> None:
        """Tell the client about finals overdue by ``lag_warning_s`` (checked per frame)."""
        after_s = self.context.limits.lag_warning_s
        for segment, lag_s in self._transcripts.newly_overdue(now, after_s):
            lag_ms = round(lag_s * 1000)
            log.warning("session_lagging", session_id=self.session_id, lag_ms=lag_ms)
            self.context.metrics.session_lagging()
            self._events.emit(SessionLagging(segment, lag_ms, _LAGGING_MESSAGE.format(lag_ms)))

    def _sent_audio(self, audio: OutputAudio) -> None:
        if self._echo is not None:
            self._echo.sent(audio)

    def _speech_stopped(self) -> None:
        if self._echo is not None:
            self._echo.stopped()

    def _report(self, admission: Admission, dropped_message: str = _DROPPED_MESSAGE) -> None:
        if admission.rate_limit_ms is not None:
            self._events.emit(RateLimit(admission.rate_limit_ms, _RATE_LIMIT_MESSAGE))
        if admission.dropped_ms is not None:
            total = self._backpressure.dropped_total_ms
            self._events.emit(FramesDropped(admission.dropped_ms, total, dropped_message))

    # ------------------------------------------------------------------ commands

    async def configure(self, changes: Mapping[str, object]) -> None:
        """Apply a partial configuration; answered by ``SessionUpdated``.

        Invalid fields raise before anything changes.

        Raises:
            InvalidRequestError: an unknown field, a value of the wrong type or out of
                range, or one the model cannot honour (``CapabilityError``); names it.
        """
        current = self.config
        updated = current.updated(changes)
        check_supported(updated, self.context.manifest)
        if updated.tts_model is not None and updated.tts_model != current.tts_model:
            await self._speaker.check_model(updated.tts_model)
        if SpeechPath.needs_rebuild(current, updated) and self._speech.in_segment:
            await self.commit()
        self._speech.reconfigure(current, updated)
        self._live.apply(updated)
        if not updated.barge_in:
            self._echo = None
        elif self._echo is None or self._echo.input_rate != updated.input_sample_rate:
            self._echo = EchoCanceller(updated.input_sample_rate)
        self._machine.timeouts = updated.timeouts()
        self._timer.poke()
        log.info("session_configured", session_id=self.session_id, fields=sorted(changes))
        self._events.emit(SessionUpdated(self.config))

    async def commit(self) -> None:
        """Finalize the open segment now (no ``SpeechEnd``); speech goes on in a new one."""
        if self.accepting:
            await self._speech.commit("client")

    async def clear(self) -> None:
        """Discard the open segment's audio and transcripts (``InputCleared``)."""
        if not self.accepting:
            return
        segment = await self._speech.discard()
        if segment is None:
            await self._outbox.send_now(InputCleared(None))

    @property
    def uncommitted_ms(self) -> int:
        """Audio of the open segment so far, in milliseconds (0 when none is open)."""
        return ms(self._speech.uncommitted_samples)

    async def speak(self, fields: Mapping[str, object]) -> None:
        """Queue a spoken reply (``tts.speak``); its events follow in the event stream.

        Raises:
            InvalidRequestError: an invalid field, or a model, voice or speed that cannot
                be used (names it).
            ClientError: the text-to-speech model has no ready worker.
        """
        await self._speaker.speak(SpeakRequest.parse(fields))

    def cancel_speech(self, request_id: str | None = None) -> None:
        """Stop one reply, or all of them (``tts.cancel``); unmutes at once.

        Raises:
            InvalidRequestError: no such reply is queued or speaking (param ``request_id``).
        """
        self._speaker.cancel(request_id)

    async def close(self, reason: CloseReason = CloseReason.CLIENT_CLOSE) -> None:
        """CLOSING: finalize the open segment, emit outstanding finals, then ``SessionClosed``.

        Speech still playing or queued is cancelled first. The CLOSING timeout (time for a
        client to leave) starts after that.
        """
        if not self.accepting:
            return
        self._machine.transition(SessionState.CLOSING, start_timer=False)
        await self._speaker.close()
        self._timer.poke()
        await self._speech.finish()
        await self._drain()
        if self._machine.state == SessionState.CLOSED:
            return  # failed while draining: the failure was reported instead
        await self._link.close()
        self._announce_closed(reason)
        self._machine.start_timer()
        self._timer.poke()

    async def cancel(self) -> None:
        """Stop at once, discarding the open segment; ``SessionClosed`` (cancelled)."""
        if not self.accepting:
            return
        self._machine.transition(SessionState.CLOSING, start_timer=False)
        await self._speaker.close()
        await self._link.close()
        self._announce_closed(CloseReason.CANCELLED)
        self._machine.start_timer()
        self._timer.poke()

    async def abort(self) -> None:
        """Stop at once (the transport is gone): discard everything not emitted yet."""
        await self._timer.stop()
        await self._speaker.abort()
        await self._link.close()
        self._finish()

    async def _drain(self) -> None:
        idle = asyncio.ensure_future(self._outbox.wait_idle())
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait(
                {idle, closed}, timeout=_CLOSE_DRAIN_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            idle.cancel()
            closed.cancel()

    def _announce_closed(self, reason: CloseReason) -> None:
        self.close_reason = reason
        dropped = self._backpressure.flush()
        if dropped is not None:
            self._report(Admission(False, dropped_ms=dropped))
        self._events.emit(SessionClosed(self.session_id, reason))

    # ------------------------------------------------------------------ lifecycle

    def _enter(self, state: SessionState) -> None:
        machine = self._machine
        if machine.state != state and machine.can_move_to(state):
            machine.transition(state)
            self._timer.poke()

    def _finish(self) -> None:
        self._speaker.stop()
        if self._machine.state != SessionState.CLOSED:
            self._machine.transition(SessionState.CLOSED)
            self._ring.release()
        self._closed.set()
        self._timer.poke()
        self._events.end()

    async def _on_timeout(self, state: SessionState, target: SessionState) -> None:
        if self._machine.state != state:
            return
        log.info("session_timeout", session_id=self.session_id, state=str(state))
        if state == SessionState.INIT:
            await self._link.close()
            self._announce_closed(CloseReason.INIT_TIMEOUT)
            self._finish()
        elif state == SessionState.SILENCE:
            self._machine.transition(target)
            self._events.emit(
                SessionHold(self.session_id, ms(self._speech.position), self.config.hold_timeout_ms)
            )
        elif state == SessionState.HOLD:
            await self.close(CloseReason.HOLD_TIMEOUT)
        else:
            self._finish()

    # ------------------------------------------------------------------ worker events

    async def _on_transcript(self, transcript: StreamTranscript) -> None:
        if transcript.kind == TranscriptKind.TENTATIVE:
            # Never shown (it may change): it only times the end of the segment.
            await self._speech.heard(transcript.segment_id, transcript.text)
            return
        if transcript.kind == TranscriptKind.PARTIAL:
            self._speech.partial(transcript.segment_id, transcript.text)
        elif transcript.kind == TranscriptKind.FINAL:
            self._speech.final(transcript.segment_id, transcript.text)
        await self._transcripts.transcript(transcript)

    async def _on_interrupted(self, resume_segment_id: int) -> None:
        self._events.emit(errors.worker_crashed(resume_segment_id))

    async def _on_rejected(self, error: InvalidRequestError) -> Correction | None:
        """The worker refused a setting: set it back, report it, and say how to resend."""
        restored = self._live.restore(error.param)
        if restored is None or error.param is None:
            self._events.emit(errors.setting_skipped(error))
            return None
        value, correct = restored
        self._events.emit(errors.setting_restored(error, error.param, value))
        return correct

    async def _on_recovered(self, segments: list[int]) -> None:
        self._transcripts.replayed(segments)
        self.context.metrics.worker_recovery("recovered")

    async def _on_failed(self, error: TheoError) -> None:
        if isinstance(error, SessionFailedError):
            self.context.metrics.worker_recovery("failed")
        if self._failure is not None or self._machine.state == SessionState.CLOSED:
            return
        self._failure = error
        self._events.emit(errors.failure(error))
        self._announce_closed(CloseReason.ERROR)
        self._finish()
