"""A session's speech path: audio cut into segments, each sent to the worker link.

Owns the segmenter (preprocessing + VAD, run off the event loop), the segment ids and the
segment boundaries: the VAD's, a client's commit, and the forced cut of a segment that
would otherwise fill the ring buffer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from theo.audio.pcm import float_to_pcm16
from theo.logging import get_logger
from theo.preprocessing.chain import PreprocessingChain
from theo.session.config import SessionConfig
from theo.session.context import SessionContext
from theo.session.dictation import ends_inside_entity
from theo.session.live_config import LiveConfig
from theo.session.ring_buffer import BYTES_PER_SECOND, RingBuffer
from theo.session.segmenter import Samples, SegmentAudio, Segmenter, SegmentEvent, SpeechStarted
from theo.session.state import SessionState
from theo.session.transcripts import TranscriptEvents
from theo.session.worker_link import WorkerLink
from theo.vad.detector import VADDetector

log = get_logger("session")

_FORCE_COMMIT_AT = 0.9
_MIN_FORCED_SEGMENT_BYTES = BYTES_PER_SECOND


class SpeechPath:
    """Turns a session's samples into segments on its worker link.

    Args:
        session_id: for logs.
        context: the model (its preprocessing defaults) and the metrics.
        live: the configuration in force (each segment's worker settings).
        link: where segment audio goes.
        ring: the link's ring buffer (a segment filling it is cut).
        transcripts: told when segments open and end.
        enter: moves the session to ACTIVE (speech) or SILENCE (speech ended).
    """

    def __init__(
        self,
        session_id: str,
        context: SessionContext,
        live: LiveConfig,
        link: WorkerLink,
        ring: RingBuffer,
        transcripts: TranscriptEvents,
        enter: Callable[[SessionState], None],
    ) -> None:
        self._session_id = session_id
        self._context = context
        self._live = live
        self._link = link
        self._ring = ring
        self._transcripts = transcripts
        self._enter = enter
        self._segmenter = self._build(live.current)
        self._segment_id = 0
        self._segment_start = 0
        self._extended = False  # the open segment's end waits the dictation silence

    @property
    def position(self) -> int:
        """Engine samples (16 kHz) heard so far: the session's audio clock."""
        return self._segmenter.position

    @property
    def in_segment(self) -> bool:
        """Whether a segment is open."""
        return self._segmenter.in_segment

    def reconfigure(self, current: SessionConfig, updated: SessionConfig) -> None:
        """Follow a new configuration (commit the open segment first on a rebuild)."""
        if self.needs_rebuild(current, updated):
            self._segmenter = self._build(updated, base=self._segmenter.position)
            return
        vad = self._segmenter.vad
        if (updated.vad_sensitivity, updated.vad_threshold) != (
            current.vad_sensitivity,
            current.vad_threshold,
        ):
            vad.set_sensitivity(updated.vad_sensitivity, updated.vad_threshold)
        if (updated.vad_silence_ms, updated.dictation, updated.dictation_silence_ms) != (
            current.vad_silence_ms,
            current.dictation,
            current.dictation_silence_ms,
        ):
            self._extended = False
            vad.set_min_silence_ms(updated.vad_silence_ms)
        self._segmenter.preroll_ms = updated.vad_prefix_padding_ms

    @staticmethod
    def needs_rebuild(current: SessionConfig, updated: SessionConfig) -> bool:
        """Whether ``updated`` needs a new segmenter (a new rate, stages or turn detection)."""
        return (
            updated.input_sample_rate != current.input_sample_rate
            or updated.preprocessing != current.preprocessing
            or updated.turn_detection != current.turn_detection
        )

    @property
    def open_segment(self) -> int | None:
        """The id of the open segment, if one is open."""
        return self._segment_id if self._segmenter.in_segment else None

    @property
    def uncommitted_samples(self) -> int:
        """Engine samples of the open segment so far (0 when none is open)."""
        if not self._segmenter.in_segment:
            return 0
        return self._segmenter.position - self._segment_start

    def heard(self, segment: int, text: str) -> None:
        """The words of ``segment`` so far (a partial): wait longer for its end while
        they stop inside a dictated entity (``dictation``)."""
        config = self._live.current
        if segment != self.open_segment or not config.dictation:
            return
        extend = ends_inside_entity(text)
        if extend != self._extended:
            self._extended = extend
            silence = config.dictation_silence_ms if extend else config.vad_silence_ms
            self._segmenter.vad.set_min_silence_ms(silence)

    def _normal_endpointing(self) -> None:
        if self._extended:
            self._extended = False
            self._segmenter.vad.set_min_silence_ms(self._live.current.vad_silence_ms)

    async def analyse(self, samples: Samples) -> list[SegmentEvent]:
        """Run one frame through preprocessing and VAD, off the event loop."""
        return await asyncio.to_thread(self._segmenter.process, samples)

    async def apply(self, events: list[SegmentEvent]) -> None:
        """Act on a frame's segment events, then cut a segment that fills the buffer."""
        for event in events:
            if isinstance(event, SpeechStarted):
                self._enter(SessionState.ACTIVE)
                await self._open(event)
            elif isinstance(event, SegmentAudio):
                pcm16 = float_to_pcm16(event.samples)
                await self._send(pcm16, is_last=False, paused=event.paused)
            else:
                if self._extended:
                    self._context.metrics.dictation_extended()
                await self._end(vad_offset=event.offset)
                self._enter(SessionState.SILENCE)
        if (
            self._segmenter.in_segment
            and self._ring.usage >= _FORCE_COMMIT_AT
            and self._link.pending_bytes(self._segment_id) >= _MIN_FORCED_SEGMENT_BYTES
        ):
            log.info(
                "segment_force_committed", session_id=self._session_id, segment=self._segment_id
            )
            await self.commit("ring_buffer")

    async def commit(self, reason: str) -> None:
        """End the open segment now; speech still heard goes on in a new one."""
        if not self._segmenter.in_segment:
            return
        self._segmenter.force_end()
        await self._end()
        self._context.metrics.segment_force_committed(reason)
        await self._resume_or_pause()

    async def _resume_or_pause(self) -> None:
        """After a cut: speech still heard goes on in a new segment, else SILENCE."""
        resumed = self._segmenter.resume_if_speaking()
        if resumed is not None:
            await self._open(resumed)
        else:
            self._enter(SessionState.SILENCE)

    async def finish(self) -> None:
        """End the open segment, if any, for good (the session is closing)."""
        if self._segmenter.in_segment:
            self._segmenter.force_end()
            await self._end()

    async def discard(self) -> int | None:
        """End the open segment without its transcript; returns its id (None: none open)."""
        segment = self.open_segment
        if segment is None:
            return None
        await self._transcripts.discard(segment)
        self._segmenter.force_end()
        await self._end()
        await self._resume_or_pause()
        return segment

    async def _open(self, start: SpeechStarted) -> None:
        self._normal_endpointing()
        self._segment_id += 1
        self._segment_start = start.offset
        await self._transcripts.opened(self._segment_id, start.offset, start.onset)

    async def _send(self, pcm16: bytes, *, is_last: bool, paused: bool = False) -> None:
        audio = self._live.segment_audio(self._segment_id, pcm16, is_last=is_last, paused=paused)
        await self._link.send(audio)

    async def _end(self, vad_offset: int | None = None) -> None:
        await self._transcripts.ended(self._segment_id, self._segmenter.position, vad_offset)
        await self._send(b"", is_last=True)

    def _build(self, config: SessionConfig, base: int = 0) -> Segmenter:
        preprocessing = config.preprocessing.apply_to(self._context.manifest.preprocessing)
        chain = PreprocessingChain.build(preprocessing, config.input_sample_rate)
        vad = VADDetector(sensitivity=config.vad_sensitivity, min_silence_ms=config.vad_silence_ms)
        if config.vad_threshold is not None:
            vad.set_sensitivity(config.vad_sensitivity, config.vad_threshold)
        return Segmenter(
            chain,
            vad,
            base=base,
            preroll_ms=config.vad_prefix_padding_ms,
            manual=config.turn_detection == "manual",
        )
