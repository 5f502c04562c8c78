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
_FORCE_COMMIT_HEADROOM_S = 6.0
"""Room a force-committed segment leaves for the speech that goes on while its final
is decoded (the audio stays in the ring buffer until then): at least this, so a small
ring on a busy machine does not fill before the final is in."""
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
        # The words of the segment up to the current pause (the worker's tentative
        # transcript), once they have come: they decide whether the pause ends it.
        self._pause_words: str | None = None
        # A segment sent again after a worker crash has no tentative transcript for a
        # pause already over: its latest partial decides instead.
        self._replayed = False
        self._partial_words = ""
        # Set when the current pause's words have come, or can no longer come (the segment
        # ended): a frame held back for them goes on (see await_pause_words).
        self._words_came = asyncio.Event()
        # The current pause's words did not come within _PAUSE_WORDS_HOLD_S.
        self._words_overdue = False
        # A final that ends inside a dictated entity (a pause longer than the dictation
        # window) prompts the next segment with the dictation so far, so Whisper hears
        # "sete oito nove" after "meu CPF é 1, 2, 3. 4, 5, 6." as digits.
        self._contexts: dict[int, str] = {}  # segment id -> the dictation it goes on with
        self._segment_context: str | None = None
        # Held while a frame is analysed and applied, and while a pause's words end the
        # segment: the two never interleave (the worker reads one segment at a time).
        self.lock = asyncio.Lock()

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
        if _endpoint_silence_ms(updated) != _endpoint_silence_ms(current):
            vad.set_min_silence_ms(_endpoint_silence_ms(updated))
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

    def final(self, segment: int, text: str) -> None:
        """The engine's final words of ``segment``: a dictation still going on prompts the
        next segment (from its next frame on, if it is already open)."""
        context = self._contexts.pop(segment, None)
        if not self._live.current.dictation or not ends_inside_entity(text):
            return
        # The dictation so far, every group of it: one group alone says too little.
        self._contexts[segment + 1] = " ".join(p for p in (context, text.strip()) if p)
        if self.open_segment == segment + 1:
            self._segment_context = self._contexts[segment + 1]

    def partial(self, segment: int, text: str) -> None:
        """The latest partial of ``segment``: the fallback words of a replayed segment."""
        if segment == self.open_segment:
            self._partial_words = text

    async def heard(self, segment: int, text: str) -> None:
        """The words of ``segment`` up to the speaker's current pause (the worker's
        tentative transcript): they decide whether the pause ends it."""
        if segment != self.open_segment or not self._segmenter.vad.pausing:
            return
        self._pause_words = text
        self._words_came.set()
        async with self.lock:  # no frame in between: the client may have stopped sending
            await self._end_at_pause()

    async def await_pause_words(self) -> None:
        """Hold the next frame back while the open segment's pause has lasted
        ``vad_silence_ms`` and its words have not come (at most
        :data:`_PAUSE_WORDS_HOLD_S`), then end the segment at the pause if they allow.

        An idle worker sends the words within the pause; a busy one may send them after
        the speaker has resumed, and the resumed speech would run into the segment those
        words end. Holding the frame makes the decision the idle machine's: it delays
        the next utterance's audio only on a machine too busy to keep up anyway.
        """
        if not self._awaiting_pause_words():
            return
        self._words_came.clear()
        try:
            async with asyncio.timeout(_PAUSE_WORDS_HOLD_S):
                await self._words_came.wait()
        except TimeoutError:
            log.info(
                "pause_words_overdue",
                session_id=self._session_id,
                segment=self._segment_id,
                held_ms=round(_PAUSE_WORDS_HOLD_S * 1000),
            )
            self._words_overdue = True
            async with self.lock:
                await self._end_at_pause()

    def _awaiting_pause_words(self) -> bool:
        config = self._live.current
        vad = self._segmenter.vad
        return (
            self._segmenter.in_segment
            and vad.pausing
            and self._pause_words is None
            and not self._words_overdue
            and not self._replayed
            and not self._link.recovering
            and _endpoint_silence_ms(config) > config.vad_silence_ms
            and vad.quiet_ms >= config.vad_silence_ms
        )

    async def _end_at_pause(self) -> None:
        if not self._segmenter.in_segment or not self._pause_ends_segment():
            return
        ended = self._segmenter.end_pause()
        if ended is not None:
            await self._end(vad_offset=ended.offset)
            self._enter(SessionState.SILENCE)

    def _pause_ends_segment(self) -> bool:
        """Whether the open segment ends at the current pause before the VAD's own wait.

        With ``dictation`` the VAD waits ``dictation_silence_ms``; once the pause has
        lasted ``vad_silence_ms`` and its words have come, a pause that does not stop
        inside a dictated entity ends the segment there. The decision rests on the words
        up to the pause, decoded from audio the pause fixes, so it is the same on a busy
        machine (where they come later, and the next frame waits for them: see
        :meth:`await_pause_words`) as on an idle one, unless they come more than
        :data:`_PAUSE_WORDS_HOLD_S` late: the latest partial decides then.
        """
        config = self._live.current
        vad = self._segmenter.vad
        self._replayed = self._replayed or self._link.recovering
        if not vad.pausing:
            # Speech resumed: words of an earlier pause.
            self._pause_words = None
            self._words_overdue = False
            return False
        words = self._pause_words
        if words is None and (self._replayed or self._words_overdue):
            words = self._partial_words
        return (
            words is not None
            and vad.quiet_ms >= config.vad_silence_ms
            and not ends_inside_entity(words)
        )

    async def analyse(self, samples: Samples) -> list[SegmentEvent]:
        """Run one frame through preprocessing and VAD, off the event loop."""
        return await asyncio.to_thread(self._segmenter.process, samples)

    async def apply(self, events: list[SegmentEvent]) -> None:
        """Act on a frame's segment events, then end the segment at a pause its words
        allow, or cut one that fills the buffer. Called with :attr:`lock` held."""
        for event in events:
            if isinstance(event, SpeechStarted):
                self._enter(SessionState.ACTIVE)
                await self._open(event)
            elif isinstance(event, SegmentAudio):
                pcm16 = float_to_pcm16(event.samples)
                await self._send(pcm16, is_last=False, paused=event.paused)
            else:
                if _endpoint_silence_ms(self._live.current) > self._live.current.vad_silence_ms:
                    # The VAD's own (dictation) wait ended it: the pause stopped inside
                    # an entity, or its words never came.
                    self._context.metrics.dictation_extended()
                await self._end(vad_offset=event.offset)
                self._enter(SessionState.SILENCE)
        await self._end_at_pause()
        open_bytes = self._link.pending_bytes(self._segment_id)
        if (
            self._segmenter.in_segment
            and self._ring.usage >= _force_commit_at(self._ring.capacity)
            and open_bytes >= _MIN_FORCED_SEGMENT_BYTES
            # Cutting frees nothing while earlier segments' late finals fill the ring:
            # it would only chop the speech into short, worse-decoded segments.
            and open_bytes * 2 >= self._ring.uncommitted
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
        self._pause_words = None
        self._words_overdue = False
        self._replayed = self._link.recovering
        self._partial_words = ""
        self._segment_id += 1
        self._segment_context = self._contexts.get(self._segment_id)
        self._segment_start = start.offset
        await self._transcripts.opened(self._segment_id, start.offset, start.onset)

    async def _send(self, pcm16: bytes, *, is_last: bool, paused: bool = False) -> None:
        audio = self._live.segment_audio(
            self._segment_id,
            pcm16,
            is_last=is_last,
            paused=paused,
            context=self._segment_context,
        )
        await self._link.send(audio)

    async def _end(self, vad_offset: int | None = None) -> None:
        self._words_came.set()  # no pause of this segment waits for words any more
        await self._transcripts.ended(self._segment_id, self._segmenter.position, vad_offset)
        await self._send(b"", is_last=True)

    def _build(self, config: SessionConfig, base: int = 0) -> Segmenter:
        defaults = self._context.manifest.preprocessing.for_input_rate(config.input_sample_rate)
        preprocessing = config.preprocessing.apply_to(defaults)
        chain = PreprocessingChain.build(preprocessing, config.input_sample_rate)
        vad = VADDetector(
            sensitivity=config.vad_sensitivity, min_silence_ms=_endpoint_silence_ms(config)
        )
        if config.vad_threshold is not None:
            vad.set_sensitivity(config.vad_sensitivity, config.vad_threshold)
        return Segmenter(
            chain,
            vad,
            base=base,
            preroll_ms=config.vad_prefix_padding_ms,
            manual=config.turn_detection == "manual",
        )


# How long a frame is held back for a pause's words before the latest partial decides:
# long enough for a loaded worker's decode, short enough that the audio held meanwhile
# stays under the backpressure's rate-limit backlog (2 s).
_PAUSE_WORDS_HOLD_S = 1.0


def _endpoint_silence_ms(config: SessionConfig) -> int:
    """The VAD's own silence wait: the dictation window while dictation is on (the
    session ends an ordinary pause sooner, at ``vad_silence_ms``, once its words came)."""
    if config.dictation and config.turn_detection == "vad":
        return max(config.vad_silence_ms, config.dictation_silence_ms)
    return config.vad_silence_ms


def _force_commit_at(capacity: int) -> float:
    """The ring buffer usage at which an open segment is cut: 90%, or earlier on a ring
    too small for :data:`_FORCE_COMMIT_HEADROOM_S` of headroom (never before half)."""
    headroom = _FORCE_COMMIT_HEADROOM_S * BYTES_PER_SECOND / capacity
    return max(0.5, min(_FORCE_COMMIT_AT, 1.0 - headroom))
