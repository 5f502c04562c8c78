"""One realtime transcription session: client audio in, VAD and transcript events out.

Data flows one way: client frame -> backpressure -> segmenter (preprocessing + VAD, off
the loop) -> worker link (ring buffer, worker stream) -> transcripts -> post-processing
(finals only, off the loop) -> events, released in segment order by the outbox. The
session's lifecycle (INIT, ACTIVE, SILENCE, HOLD, CLOSING, CLOSED) is a state machine
whose timeouts a timer task enforces.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

from theo.audio.pcm import float_to_pcm16, pcm16_to_float
from theo.errors import InvalidRequestError, TheoError
from theo.logging import get_logger
from theo.postprocessing.chain import merge_hot_words
from theo.preprocessing.chain import PreprocessingChain
from theo.session.backpressure import Admission, BackpressureController
from theo.session.config import SessionConfig, check_supported
from theo.session.context import SessionContext
from theo.session.outbox import Event, OrderedOutbox
from theo.session.ring_buffer import BYTES_PER_SECOND, RingBuffer
from theo.session.segmenter import SegmentAudio, Segmenter, SpeechEnded, SpeechStarted
from theo.session.state import SessionState, SessionStateMachine
from theo.session.timer import StateTimer
from theo.session.transcripts import TranscriptEvents, ms
from theo.session.worker_link import Correction, LinkCallbacks, SessionFailedError, WorkerLink
from theo.types import StreamAudio
from theo.vad.detector import VADDetector

log = get_logger("session")

_CLOSE_DRAIN_TIMEOUT_S = 30.0
_FORCE_COMMIT_AT = 0.9
_MIN_FORCED_SEGMENT_BYTES = BYTES_PER_SECOND
# Besides its own audio, a frame may release up to 200 ms of pre-roll (and resampler delay).
_FRAME_MARGIN_S = 0.3
# The settings the worker sees, by session field: the StreamAudio field each one feeds.
_WORKER_FIELDS = {
    "language": "language",
    "hot_words": "hot_words",
    "enable_partial_transcripts": "enable_partials",
}


class StreamingSession:
    """Owns one session's lifecycle, segmenter, worker link and event ordering."""

    def __init__(
        self,
        session_id: str,
        context: SessionContext,
        config: SessionConfig,
        send: Callable[[Event], Awaitable[None]],
    ) -> None:
        self.session_id = session_id
        self.context = context
        self.config = config
        self.close_reason: str | None = None
        limits = context.limits
        self._outbox = OrderedOutbox(send)
        self._events = TranscriptEvents(context, self._outbox, lambda: self.config)
        self._segmenter = self._build_segmenter(config)
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
                transcript=self._events.transcript,
                interrupted=self._on_interrupted,
                recovered=self._on_recovered,
                failed=self._on_failed,
                context=lambda: self._events.recent_text,
                rejected=self._on_rejected,
            ),
            recovery_timeout_s=limits.recovery_timeout_s,
        )
        self._segment_id = 0
        self._failure: TheoError | None = None
        self._closed = asyncio.Event()
        self._engine_hot_words = self._hot_words_for(config)
        # What a worker-facing field held before its last change: where a value the
        # worker refuses is set back to.
        self._previous: dict[str, Any] = {}

    def _hot_words_for(self, config: SessionConfig) -> tuple[str, ...]:
        """The model's and the session's hot words, merged once per configuration."""
        manifest_words = self.context.manifest.postprocessing.hot_words
        return tuple(merge_hot_words(manifest_words, config.hot_words))

    def _build_segmenter(self, config: SessionConfig, base: int = 0) -> Segmenter:
        preprocessing = config.preprocessing.apply_to(self.context.manifest.preprocessing)
        chain = PreprocessingChain.build(preprocessing, config.input_sample_rate)
        return Segmenter(chain, VADDetector(sensitivity=config.vad_sensitivity), base=base)

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

    async def wait_closed(self) -> None:
        """Return once the session is CLOSED (the transport then closes the socket)."""
        await self._closed.wait()

    async def start(self) -> None:
        """Open the worker stream, announce the session and start its timeouts.

        Raises:
            ModelUnavailableError: no worker of the model is ready.
        """
        self._link.start()
        await self._outbox.send_now(
            {
                "type": "session.created",
                "session_id": self.session_id,
                "model": self.context.model_name,
                "config": self.config.model_dump(),
            }
        )
        self._timer.start(name=f"timer-{self.session_id}")

    # ------------------------------------------------------------------ audio in

    async def feed(self, pcm16: bytes) -> None:
        """Process one binary frame of PCM16 audio at the configured input rate."""
        if len(pcm16) % 2:
            raise InvalidRequestError(
                "Audio frames must be 16-bit PCM: the frame has an odd number of bytes.",
                param="audio",
            )
        if not pcm16 or not self.accepting:
            return
        duration_s = len(pcm16) / 2 / self.config.input_sample_rate
        admission = self._backpressure.admit(duration_s)
        await self._report(admission)
        if not admission.accepted:
            return
        if self._ring.free < (duration_s + _FRAME_MARGIN_S) * BYTES_PER_SECOND:
            # Finals are late and the buffer holds only audio still waiting for them.
            await self._report(Admission(False, dropped_ms=self._backpressure.drop(duration_s)))
            return
        samples = pcm16_to_float(pcm16)
        events = await asyncio.to_thread(self._segmenter.process, samples)
        if not self.accepting:
            return  # closed (e.g. by a timeout) while the frame was being processed
        for event in events:
            await self._handle(event)
        await self._maybe_force_commit()

    async def _report(self, admission: Admission) -> None:
        if admission.rate_limit_ms is not None:
            await self._outbox.send_now(
                {
                    "type": "session.rate_limit",
                    "delay_ms": admission.rate_limit_ms,
                    "message": "Audio is arriving faster than real time; pause for delay_ms.",
                }
            )
        if admission.dropped_ms is not None:
            await self._outbox.send_now(
                {
                    "type": "session.frames_dropped",
                    "dropped_ms": admission.dropped_ms,
                    "total_dropped_ms": self._backpressure.dropped_total_ms,
                    "message": "Audio was dropped: it arrived too far ahead of real time.",
                }
            )

    async def _handle(self, event: SpeechStarted | SegmentAudio | SpeechEnded) -> None:
        if isinstance(event, SpeechStarted):
            self._enter(SessionState.ACTIVE)
            self._segment_id += 1
            await self._events.opened(self._segment_id, event.offset, event.onset)
        elif isinstance(event, SegmentAudio):
            await self._send_audio(
                float_to_pcm16(event.samples), is_last=False, paused=event.paused
            )
        else:
            await self._end_segment(vad_offset=event.offset)
            self._enter(SessionState.SILENCE)

    async def _send_audio(self, pcm16: bytes, *, is_last: bool, paused: bool = False) -> None:
        config = self.config
        await self._link.send(
            StreamAudio(
                segment_id=self._segment_id,
                audio_pcm16=pcm16,
                is_last=is_last,
                language=config.language,
                hot_words=self._engine_hot_words,
                enable_partials=config.enable_partial_transcripts,
                speaker_paused=paused,
            )
        )

    async def _end_segment(self, vad_offset: int | None = None) -> None:
        self._events.ended(self._segment_id, vad_offset)
        await self._send_audio(b"", is_last=True)

    async def _maybe_force_commit(self) -> None:
        """Cut a segment that would otherwise fill the ring buffer; speech goes on in the next."""
        if (
            self._segmenter.in_segment
            and self._ring.usage >= _FORCE_COMMIT_AT
            and self._link.pending_bytes(self._segment_id) >= _MIN_FORCED_SEGMENT_BYTES
        ):
            log.info(
                "segment_force_committed", session_id=self.session_id, segment=self._segment_id
            )
            await self._commit("ring_buffer")

    async def commit(self) -> None:
        """``input_audio_buffer.commit``: finalize the open segment now."""
        if self.accepting:
            await self._commit("client")

    async def _commit(self, reason: str) -> None:
        if not self._segmenter.in_segment:
            return
        self._segmenter.force_end()
        await self._end_segment()
        self.context.metrics.segment_force_committed(reason)
        resumed = self._segmenter.resume_if_speaking()
        if resumed is not None:
            self._segment_id += 1
            await self._events.opened(self._segment_id, resumed.offset, resumed.onset)
        else:
            self._enter(SessionState.SILENCE)

    # ------------------------------------------------------------------ commands

    async def configure(self, changes: dict[str, Any]) -> None:
        """Apply ``session.configure``; invalid fields raise before anything changes.

        Raises:
            InvalidRequestError: an unknown field, a value of the wrong type or out of
                range, or one the model cannot honour (``CapabilityError``); names it.
        """
        updated = self.config.updated(changes)
        check_supported(updated, self.context.manifest)
        rebuild = (
            updated.input_sample_rate != self.config.input_sample_rate
            or updated.preprocessing != self.config.preprocessing
        )
        if rebuild and self._segmenter.in_segment:
            await self.commit()
        if rebuild:
            self._segmenter = self._build_segmenter(updated, base=self._segmenter.position)
        elif updated.vad_sensitivity != self.config.vad_sensitivity:
            self._segmenter.vad.set_sensitivity(updated.vad_sensitivity)
        for name in _WORKER_FIELDS:
            if getattr(updated, name) != getattr(self.config, name):
                self._previous[name] = getattr(self.config, name)
        self.config = updated
        self._engine_hot_words = self._hot_words_for(updated)
        self._machine.timeouts = updated.timeouts()
        self._timer.poke()
        log.info("session_configured", session_id=self.session_id, fields=sorted(changes))

    async def close(self, reason: str = "client_close") -> None:
        """CLOSING: finalize the open segment, send outstanding finals, then ``session.closed``.

        The CLOSING timeout (time for the client to close the socket) starts after that.
        """
        if not self.accepting:
            return
        self._machine.transition(SessionState.CLOSING, start_timer=False)
        self._timer.poke()
        if self._segmenter.in_segment:
            self._segmenter.force_end()
            await self._end_segment()
        await self._drain()
        if self._machine.state == SessionState.CLOSED:
            return  # failed while draining: the failure was reported instead
        await self._link.close()
        await self._announce_closed(reason)
        self._machine.start_timer()
        self._timer.poke()

    async def cancel(self) -> None:
        """``session.cancel``: stop at once, discarding the open segment."""
        if not self.accepting:
            return
        self._machine.transition(SessionState.CLOSING, start_timer=False)
        await self._link.close()
        await self._announce_closed("cancelled")
        self._machine.start_timer()
        self._timer.poke()

    async def abort(self) -> None:
        """Stop at once (the client left): discard everything outstanding."""
        await self._timer.stop()
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

    async def _announce_closed(self, reason: str) -> None:
        self.close_reason = reason
        dropped = self._backpressure.flush()
        if dropped is not None:
            await self._report(Admission(False, dropped_ms=dropped))
        await self._outbox.send_now(
            {"type": "session.closed", "session_id": self.session_id, "reason": reason}
        )

    # ------------------------------------------------------------------ lifecycle

    def _enter(self, state: SessionState) -> None:
        machine = self._machine
        if machine.state != state and machine.can_move_to(state):
            machine.transition(state)
            self._timer.poke()

    def _finish(self) -> None:
        if self._machine.state != SessionState.CLOSED:
            self._machine.transition(SessionState.CLOSED)
        self._closed.set()
        self._timer.poke()

    async def _on_timeout(self, state: SessionState, target: SessionState) -> None:
        if self._machine.state != state:
            return
        log.info("session_timeout", session_id=self.session_id, state=str(state))
        if state == SessionState.INIT:
            await self._link.close()
            await self._announce_closed("init_timeout")
            self._finish()
        elif state == SessionState.SILENCE:
            self._machine.transition(target)
            await self._outbox.send_now(
                {
                    "type": "session.hold",
                    "session_id": self.session_id,
                    "timestamp_ms": ms(self._segmenter.position),
                    "hold_timeout_ms": self.config.hold_timeout_ms,
                }
            )
        elif state == SessionState.HOLD:
            await self.close("hold_timeout")
        else:
            self._finish()

    # ------------------------------------------------------------------ worker events

    async def _on_interrupted(self, resume_segment_id: int) -> None:
        await self._outbox.send_now(
            {
                "type": "error",
                "code": "worker_crashed",
                "message": "The worker serving this session stopped. It is being restarted; "
                "uncommitted audio will be transcribed again, nothing is lost.",
                "recoverable": True,
                "resume_segment_id": resume_segment_id,
            }
        )

    async def _on_rejected(self, error: InvalidRequestError) -> Correction | None:
        """The worker refused a setting: set it back, report it, and say how to resend.

        The field goes back to its value before the last ``session.configure`` that
        changed it, or else to its default (which every engine accepts: detect the
        language, no hot words). Returns None when the field is not one the session sets
        for the worker; the uncommitted speech is then given up.
        """
        param = error.param
        field = _WORKER_FIELDS.get(param or "")
        if param is None or field is None:
            await self._report_rejection(
                error, "The speech sent since then could not be transcribed and is skipped."
            )
            return None
        current = getattr(self.config, param)
        default = SessionConfig.model_fields[param].get_default(call_default_factory=True)
        restored = self._previous.pop(param, default)
        if restored == current:
            # Already set back (a frame sent before that was refused too): resend with it;
            # the link gives the speech up if the worker keeps refusing.
            restored = default
        self.config = self.config.model_copy(update={param: restored})
        self._engine_hot_words = self._hot_words_for(self.config)
        await self._report_rejection(
            error,
            f"'{param}' is set back to {json.dumps(restored)}; the speech is transcribed with it.",
        )
        value = self._engine_hot_words if param == "hot_words" else restored
        update: dict[str, Any] = {field: value}

        def correct(options: StreamAudio) -> StreamAudio:
            return dataclasses.replace(options, **update)

        return correct

    async def _report_rejection(self, error: InvalidRequestError, outcome: str) -> None:
        event: Event = {
            "type": "error",
            "code": "invalid_value",
            "message": f"The model refused a session setting: {error.message} {outcome}",
            "recoverable": True,
        }
        if error.param is not None:
            event["param"] = error.param
        await self._outbox.send_now(event)

    async def _on_recovered(self, segments: list[int]) -> None:
        self._events.replayed(segments)
        self.context.metrics.worker_recovery("recovered")

    async def _on_failed(self, error: TheoError) -> None:
        if isinstance(error, SessionFailedError):
            self.context.metrics.worker_recovery("failed")
        if self._failure is not None or self._machine.state == SessionState.CLOSED:
            return
        self._failure = error
        await self._outbox.send_now(
            {
                "type": "error",
                "code": "worker_unavailable",
                "message": error.message,
                "recoverable": False,
            }
        )
        await self._announce_closed("error")
        self._finish()
