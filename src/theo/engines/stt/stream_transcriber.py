"""Realtime transcription of one stream: LocalAgreement partials and one final per segment.

One :class:`StreamTranscriber` serves one TranscribeStream call (one realtime session).
Frames carry only speech; ``is_last`` closes the segment. A growing segment is decoded
again every ``partial_interval_s`` of new audio, one pass in flight at most, and
LocalAgreement-2 turns the passes into append-only partials. The final decodes the
whole segment afresh with the full beam, as batch transcription would: its text depends
on the segment's audio only, not on which partial passes a busy machine managed to run,
and a word the partials committed from too little audio ("Addy married" for "Had he
married") is decoded again with all of it. Earlier finals may prompt the next segments
(``context_tokens``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from theo.audio.pcm import ENGINE_SAMPLE_RATE
from theo.engines.stt.backend import SegmentDecode, SegmentOptions, STTBackend
from theo.engines.stt.final_context import FinalContext
from theo.engines.stt.local_agreement import LocalAgreement
from theo.engines.stt.pass_batcher import PassBatcher
from theo.engines.stt.pause_anchor import PauseAnchor
from theo.engines.stt.priority_executor import PriorityExecutor
from theo.types import StreamTranscript, TranscriptKind, Word

SAMPLE_RATE = ENGINE_SAMPLE_RATE
_NO_AUDIO: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)
# An early final starts at the VAD's first quiet window, which can fall inside a soft
# word's tail: when its words end well before its audio, Whisper left out the last
# phrase, and the final is decoded again over the whole segment.
_EARLY_TAIL_GAP_S = 0.5
# Pause after the early final beyond which one that stops short is decoded again at once.
# The redo covers exactly this much of the pause, however late it starts, so that a busy
# machine decodes the same audio as an idle one.
_REDO_AFTER_S = 0.4
_REDO_AFTER = round(_REDO_AFTER_S * ENGINE_SAMPLE_RATE)
# Quiet after the pause's first frame beyond which its final starts beside a partial pass
# still in flight instead of waiting for it (queued behind other sessions' passes, that
# wait is most of a busy worker's final delay). The VAD marks a pause at its first quiet
# 32 ms window, between words too; gaps between words are shorter than this, so a final
# started here is rarely wasted on speech that resumes.
_BESIDE_PASS_AFTER_S = 0.15
_BESIDE_PASS_AFTER = round(_BESIDE_PASS_AFTER_S * ENGINE_SAMPLE_RATE)
# A pause at least this long that the speaker resumed after makes the early final's words
# an anchor for the segment's later finals (see pause_anchor). It is the session's default
# end-of-speech silence: a pause this long that did not end the segment is one the
# session held open (a dictation). Shorter pauses, between words, anchor nothing.
_ANCHOR_PAUSE_S = 0.3
_ANCHOR_PAUSE = round(_ANCHOR_PAUSE_S * ENGINE_SAMPLE_RATE)
_SENTENCE_END = frozenset(".?!\u3002\uff1f\uff01\u2026")  # also CJK full stops and ellipsis


@dataclass(frozen=True, slots=True)
class StreamFrame:
    """A chunk of one segment's speech (16 kHz mono float32) and the options in force.

    Options of the latest frame with audio apply; a frame without audio only closes
    the segment (unless the segment is empty, then its options apply too).
    """

    audio: npt.NDArray[np.float32]
    is_last: bool = False
    session_id: str = ""
    segment_id: int = 0
    language: str | None = None
    prompt: str | None = None
    hot_words: tuple[str, ...] = ()
    enable_partials: bool = True
    speaker_paused: bool = False


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Tuning of partial passes, finals, context and buffer trimming."""

    partial_interval_s: float = 0.5
    """New audio that triggers another partial pass over the segment."""
    first_interval_s: float = 0.25
    """The interval while nothing is committed yet, so the first words agree sooner.

    The VAD opens a segment ~450 ms into it (250 ms to confirm speech, 200 ms pre-roll):
    at 0.5 s per pass, agreement would come no earlier than ~1 s after speech starts.
    """
    partial_beam_size: int = 1
    """Beam width of partial passes (greedy: they run every interval)."""
    final_beam_size: int | None = None
    """Beam width of the final pass; ``None`` is the model's configured beam size."""
    context_tokens: int = 0
    """Tokens of this stream's earlier finals kept as the next segments' prompt.

    Off: measured on the accuracy benchmark's real speech, earlier finals as the prompt
    cost words (tiny.en 8 -> 16 errors in 92 words, base 11 -> 14): Whisper copies a short
    prompt ("10 of clubs.") into the next segment and continues its style.
    """
    final_context_s: float = 6.0
    """Audio of this stream's latest finals decoded again, as a forced prefix, in front of
    each final (see :mod:`theo.engines.stt.final_context`); 0 turns it off."""
    trim_after_s: float = 20.0
    """Held audio above which the committed start of a segment is dropped."""
    trim_keep_s: float = 10.0
    """Audio always kept when trimming (the newest)."""


def _shift(words: Sequence[Word], offset_s: float) -> list[Word]:
    return [Word(w.word, w.start + offset_s, w.end + offset_s, w.probability) for w in words]


def _last_end(decode: SegmentDecode) -> float:
    return decode.words[-1].end if decode.words else 0.0


def _stops_short(decode: SegmentDecode, audio_s: float, gap_s: float) -> bool:
    """Whether ``decode`` has words and the last ends ``gap_s`` before its audio did."""
    return bool(decode.words) and audio_s - _last_end(decode) > gap_s


def _text(words: Sequence[Word]) -> str:
    return "".join(w.word for w in words).strip()


@dataclass(slots=True)
class _Segment:
    """The audio held for the segment being spoken, and its agreement state."""

    chunks: list[npt.NDArray[np.float32]] = field(default_factory=list)
    held: int = 0
    dropped: int = 0
    decoded_upto: int = 0
    agreement: LocalAgreement = field(default_factory=LocalAgreement)
    language: str = ""
    unstable_sent: str = ""
    """The unagreed words sent with the last partial."""

    @property
    def offset_s(self) -> float:
        """Start of the held audio on the segment's clock."""
        return self.dropped / SAMPLE_RATE

    @property
    def total(self) -> int:
        """Samples received for this segment, trimmed ones included."""
        return self.dropped + self.held

    def append(self, audio: npt.NDArray[np.float32]) -> None:
        self.chunks.append(audio)
        self.held += audio.size

    def audio(self) -> npt.NDArray[np.float32]:
        if len(self.chunks) > 1:
            self.chunks = [np.concatenate(self.chunks)]
        return self.chunks[0] if self.chunks else _NO_AUDIO

    def samples_upto(self, total: int | None) -> int:
        """Held samples before segment sample ``total`` (all of them for ``None``)."""
        return self.held if total is None else min(max(total - self.dropped, 0), self.held)

    def drop_until(self, time_s: float) -> None:
        cut = min(max(round(time_s * SAMPLE_RATE) - self.dropped, 0), self.held)
        self.chunks = [self.audio()[cut:]]
        self.held -= cut
        self.dropped += cut


_Item = StreamFrame | asyncio.Future[SegmentDecode] | Exception | None


async def _forward(frames: AsyncIterable[StreamFrame], inbox: asyncio.Queue[_Item]) -> None:
    """Read frames as they come, so reading never waits for a decode."""
    try:
        async for frame in frames:
            inbox.put_nowait(frame)
    except Exception as exc:
        inbox.put_nowait(exc)  # the consumer raises it, in order after the frames before it
    else:
        inbox.put_nowait(None)


class StreamTranscriber:
    """Turns one stream of segment audio into partial and final transcript events.

    Args:
        backend: the loaded engine.
        settings: pass scheduling, context and trimming; defaults when omitted.
        executor: where the blocking engine calls run (the loop's default when
            omitted). A single-lane executor keeps one decode at a time.
        batcher: where partial passes go instead, to be decoded together with other
            streams' passes (finals still go to ``executor``).
    """

    def __init__(
        self,
        backend: STTBackend,
        *,
        settings: StreamSettings | None = None,
        executor: Executor | None = None,
        batcher: PassBatcher | None = None,
    ) -> None:
        self._backend = backend
        self._settings = settings or StreamSettings()
        self._executor = executor
        self._batcher = batcher
        self._context = ""
        # Only an engine that reads the audio after a forced prefix (Whisper) gets context
        # and pause anchors.
        self._after_prefix = bool(getattr(backend, "decodes_after_prefix", False))
        context_s = self._settings.final_context_s if self._after_prefix else 0.0
        self._history = FinalContext(context_s)
        self._segment = _Segment()
        self._options = StreamFrame(audio=_NO_AUDIO)
        self._pass: asyncio.Future[SegmentDecode] | None = None
        self._pass_offset_s = 0.0
        # A final decoded ahead of is_last while the speaker pauses (see _start_pass);
        # it is stale once speech resumes or the segment's state changes.
        self._early: asyncio.Future[SegmentDecode] | None = None
        self._early_key = 0
        self._early_audio_s = 0.0
        # Segment samples (trimmed ones included) when the speaker's current pause began:
        # the early final covers the audio up to there, wherever the decode starts.
        self._pause_total: int | None = None
        # The early final decoded again, started as soon as the early one turned out to
        # stop short, so a long pause (dictation) does not leave it for is_last.
        self._redo: asyncio.Future[SegmentDecode] | None = None
        self._early_short = False  # the early final's words end well before its audio
        # The words up to the segment's latest long pause, which later final decodes keep
        # (see pause_anchor); while that pause's early final is still decoding, it is
        # pending, and no final decode starts before it is settled: the same audio gives
        # the same anchor however busy the machine is.
        self._anchor: PauseAnchor | None = None
        self._anchor_pending: tuple[asyncio.Future[SegmentDecode], int, float] | None = None

    @property
    def session_id(self) -> str:
        """The session id carried by the latest frame."""
        return self._options.session_id

    @property
    def context(self) -> str:
        """The end of this stream's finals that prompts the next segments."""
        return self._context

    async def events(
        self, frames: AsyncIterable[StreamFrame]
    ) -> AsyncGenerator[StreamTranscript, None]:
        """Consume ``frames`` and yield events in order; engine errors are raised here.

        When the frames end in the middle of a segment, that segment still gets its final.
        """
        inbox: asyncio.Queue[_Item] = asyncio.Queue()
        reader = asyncio.create_task(_forward(frames, inbox))
        try:
            while (item := await inbox.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                if isinstance(item, StreamFrame):
                    event = await self._on_frame(item)
                else:
                    event = self._on_pass(item)
                if event is not None:
                    yield event
                self._start_pass(inbox)
            if self._segment.held:
                yield await self._finalize()
        finally:
            self._drop_pass()
            self._drop_early()
            if self._anchor_pending is not None:
                self._anchor_pending[0].cancel()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _on_frame(self, frame: StreamFrame) -> StreamTranscript | None:
        if frame.audio.size or not self._segment.total:
            # A bare closing frame must not reset the options its segment was spoken with.
            self._options = frame
        if frame.audio.size:
            if not frame.speaker_paused:
                self._anchor_at_resumption()
                self._drop_early()
                self._pause_total = None
            self._segment.append(frame.audio)
            if frame.speaker_paused and self._pause_total is None:
                self._pause_total = self._segment.total
        return await self._finalize() if frame.is_last else None

    def _anchor_at_resumption(self) -> None:
        """The speaker resumed: after a long pause, its early final becomes the anchor."""
        pause = self._pause_total
        early = self._early
        if (
            pause is None
            or early is None
            or self._segment.total - pause < _ANCHOR_PAUSE
            or self._segment.dropped  # (then the early final is stale too)
        ):
            return
        self._early = None  # kept, not cancelled with the rest
        self._anchor_pending = (early, pause, self._early_audio_s)
        if early.done():
            self._settle_anchor()

    def _settle_anchor(self) -> None:
        """Make the finished pending early final the anchor (unless it failed, stopped
        short of its audio or the segment was trimmed meanwhile)."""
        assert self._anchor_pending is not None
        early, pause, audio_s = self._anchor_pending
        self._anchor_pending = None
        if early.cancelled() or early.exception() is not None or self._segment.dropped:
            return
        decode = early.result()
        if decode.words and not _stops_short(decode, audio_s, _EARLY_TAIL_GAP_S):
            self._anchor = PauseAnchor(pause / SAMPLE_RATE, tuple(self._final_words(decode)))

    async def _await_anchor(self) -> None:
        """Settle a pending anchor before a final decode that would use it."""
        if self._anchor_pending is not None:
            await asyncio.wait([self._anchor_pending[0]])
            self._settle_anchor()

    def _start_pass(self, inbox: asyncio.Queue[_Item]) -> None:
        segment = self._segment
        if self._anchor_pending is not None and self._anchor_pending[0].done():
            self._settle_anchor()
        if self._options.speaker_paused:
            if self._anchor_pending is not None:
                return  # no final decode before the anchor it would use is settled
            # The speaker paused: the segment is probably over. Decode the final now, so
            # it is ready (or nearly) when is_last arrives after the VAD's silence wait,
            # and start no partial pass that the final would have to wait for.
            pause = self._pause_total
            if (
                self._early is not None
                and self._early_short
                and self._redo is None
                and pause is not None
                and segment.total >= pause + _REDO_AFTER
            ):
                # The early final stops short and the pause goes on (a dictation wait):
                # decode again over the start of the pause, ready before is_last comes.
                self._redo = self._decode(
                    self._settings.final_beam_size, final=True, upto=pause + _REDO_AFTER
                )
            if self._early is None and segment.held and self._may_start_final(pause):
                self._early_short = False
                self._early = self._decode(self._settings.final_beam_size, final=True, upto=pause)
                self._early_key = self._segment_key()
                self._early_audio_s = segment.samples_upto(pause) / SAMPLE_RATE
                # Its words also go out as a tentative transcript (see _on_pass).
                self._early.add_done_callback(inbox.put_nowait)
            return
        settings = self._settings
        seconds = (
            settings.partial_interval_s
            if segment.agreement.committed
            else settings.first_interval_s
        )
        interval = seconds * SAMPLE_RATE
        if (
            self._pass is not None
            or not self._options.enable_partials
            or segment.total - segment.decoded_upto < interval
        ):
            return
        segment.decoded_upto = segment.total
        self._pass_offset_s = segment.offset_s
        self._pass = self._decode(self._settings.partial_beam_size, final=False)
        self._pass.add_done_callback(inbox.put_nowait)

    def _may_start_final(self, pause: int | None) -> bool:
        """Whether the paused speaker's final may start now: at once when no partial pass
        is in flight, beside one once the pause has lasted ``_BESIDE_PASS_AFTER``."""
        if self._pass is None:
            return True
        return pause is not None and self._segment.total - pause >= _BESIDE_PASS_AFTER

    def _on_pass(self, done: asyncio.Future[SegmentDecode]) -> StreamTranscript | None:
        if done is self._early and not done.cancelled() and done.exception() is None:
            decode = done.result()
            self._early_short = _stops_short(decode, self._early_audio_s, _EARLY_TAIL_GAP_S)
            return self._tentative(decode)
        if done is not self._pass or done.cancelled():
            return None  # superseded by the segment's final
        self._pass = None
        decode = done.result()
        segment = self._segment
        segment.language = decode.language
        new = segment.agreement.update(_shift(decode.words, self._pass_offset_s))
        if segment.held > self._settings.trim_after_s * SAMPLE_RATE:
            self._trim()
        unstable = _text(segment.agreement.pending)
        if not new and unstable == segment.unstable_sent:
            return None
        segment.unstable_sent = unstable
        committed = segment.agreement.committed
        partial = self._event(TranscriptKind.PARTIAL, committed, _text(committed), None)
        return dataclasses.replace(partial, unstable_text=unstable)

    def _tentative(self, decode: SegmentDecode) -> StreamTranscript:
        """The early final's words: what the paused speaker said so far, as it reads now."""
        words = self._final_words(decode)
        return self._event(TranscriptKind.TENTATIVE, words, _text(words) or decode.text, None)

    def _final_words(self, decode: SegmentDecode) -> list[Word]:
        """A final decode's words on the segment's clock, after the words trimmed away."""
        segment = self._segment
        words = _shift(decode.words, segment.offset_s)
        if segment.dropped:
            # A trimmed segment's final continues its committed words (see _decode).
            agreement = segment.agreement
            return [*agreement.committed, *agreement.beyond_committed(words)]
        return self._anchor.restore(words) if self._anchor is not None else words

    def _segment_key(self) -> int:
        """What an early final depends on besides the audio: the audio trimmed away."""
        return self._segment.dropped

    def _take_early(self) -> asyncio.Future[SegmentDecode] | None:
        """The early final, if only paused (silent) audio arrived since it started."""
        early = self._early
        if early is not None and self._early_key == self._segment_key():
            self._early = None  # the redo, if any, stays for _final_decode
            return early
        self._drop_early()
        return None

    async def _final_decode(
        self, early: asyncio.Future[SegmentDecode] | None
    ) -> tuple[SegmentDecode, int | None]:
        """The final's decode, and the segment sample it decoded up to (``None``: all):
        the early one, unless it stops short, else a fresh one.

        Where no early final ran (a partial pass held the engine through the whole silence
        wait, on a busy machine), the audio up to the pause is decoded first, as the early
        final would have: the same audio gives the same final however busy the machine is.
        """
        pause = self._pause_total
        if early is None and pause is not None and self._segment.samples_upto(pause):
            early = self._decode(self._settings.final_beam_size, final=True, upto=pause)
            self._early_audio_s = self._segment.samples_upto(pause) / SAMPLE_RATE
        decode = await early if early is not None else None
        if decode is not None and not _stops_short(decode, self._early_audio_s, _EARLY_TAIL_GAP_S):
            return decode, pause
        upto = None if pause is None else pause + _REDO_AFTER
        redo, self._redo = self._redo, None
        if redo is None:
            redo = self._decode(self._settings.final_beam_size, final=True, upto=upto)
        return await redo, upto

    def _drop_early(self) -> None:
        for future in (self._early, self._redo):
            if future is not None:
                future.cancel()
        self._early = self._redo = None

    async def _finalize(self) -> StreamTranscript:
        await self._await_anchor()
        early = self._take_early()
        self._drop_pass()
        segment = self._segment
        agreement = segment.agreement
        words: Sequence[Word] = agreement.committed
        text = _text(words)
        confidence = None
        decoded_upto: int | None = None
        if segment.held:
            decode, decoded_upto = await self._final_decode(early)
            segment.language = decode.language
            if decode.words or decode.text:
                # Heard as nothing (Whisper's no-speech check), the committed words stay.
                words = self._final_words(decode)
                text = _text(words) if words else decode.text
                confidence = decode.confidence
        event = self._event(TranscriptKind.FINAL, words, text, confidence)
        if segment.dropped:
            self._history.clear()
        else:
            # The audio the final was decoded from, not the pause after it: how long the
            # pause ran before the segment ended depends on when its words came.
            audio = segment.audio()
            self._history.remember(audio[: segment.samples_upto(decoded_upto)], event.text)
        if event.text and self._settings.context_tokens > 0:
            # Whisper continues its prompt's style: a context ending mid-sentence would make
            # the next segment start in lowercase, so every final closes a sentence here.
            sentence = event.text if event.text[-1] in _SENTENCE_END else f"{event.text}."
            # A tokenizer call over a few hundred tokens: microseconds, fine on the loop.
            self._context = self._backend.tail_tokens(
                f"{self._context} {sentence}", self._settings.context_tokens
            )
        self._segment = _Segment()
        self._pause_total = None
        self._anchor = None
        return event

    def _trim(self) -> None:
        """Drop held audio up to a committed word that ended ``trim_keep_s`` ago or earlier."""
        segment = self._segment
        horizon_s = segment.total / SAMPLE_RATE - self._settings.trim_keep_s
        until = segment.agreement.cut_point(horizon_s)
        if until is not None:
            segment.drop_until(until)
            segment.agreement.trim(until)

    def _decode(
        self, beam_size: int | None, *, final: bool, upto: int | None = None
    ) -> asyncio.Future[SegmentDecode]:
        """Decode the held audio (up to segment sample ``upto``) in the executor: a partial
        pass with the live committed words as its prefix, or a ``final`` decode without one.

        Finals are urgent: a :class:`PriorityExecutor` runs them before queued passes.
        """
        frame, agreement = self._options, self._segment.agreement
        prompt_parts = (frame.prompt, self._context, _text(agreement.trimmed))
        options = SegmentOptions(
            language=frame.language,
            prompt=" ".join(p for p in prompt_parts if p) or None,
            hot_words=frame.hot_words,
            # A segment held so long it was trimmed (over trim_after_s) keeps the committed
            # words as the final's prefix: the audio left starts mid-speech.
            prefix=(_text(agreement.live) or None) if not final or self._segment.dropped else None,
            beam_size=beam_size,
            final=final,
        )
        audio = self._segment.audio()[: self._segment.samples_upto(upto)]
        if not final and self._batcher is not None:
            return asyncio.wrap_future(self._batcher.submit(audio, options))
        anchor = self._anchor if self._after_prefix and not self._segment.dropped else None
        lanes = self._executor if isinstance(self._executor, PriorityExecutor) else None
        if final and lanes is not None:
            beside = lanes.submit_urgent if lanes.lanes > 1 else None
            decode = self._history.decoder(self._backend, anchor, beside)
            return asyncio.wrap_future(lanes.submit_urgent(decode, audio, options))
        decode = (
            self._history.decoder(self._backend, anchor) if final else self._backend.decode_segment
        )
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, decode, audio, options)

    def _drop_pass(self) -> None:
        if self._pass is not None:
            self._pass.cancel()
            self._pass = None

    def _event(
        self, kind: TranscriptKind, words: Sequence[Word], text: str, confidence: float | None
    ) -> StreamTranscript:
        segment = self._segment
        if words:
            start_ms, end_ms = round(words[0].start * 1000), round(words[-1].end * 1000)
            confidence = sum(w.probability for w in words) / len(words)
        else:
            start_ms, end_ms = 0, round(segment.total * 1000 / SAMPLE_RATE)
        return StreamTranscript(
            kind=kind,
            segment_id=self._options.segment_id,
            text=text,
            start_ms=start_ms,
            end_ms=end_ms,
            language=segment.language or self._options.language or "",
            confidence=confidence or 0.0,
            words=tuple(words),
        )
