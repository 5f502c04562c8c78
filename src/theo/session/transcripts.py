"""Worker transcripts become session events: partials as they come, post-processed finals.

Events are tagged with their segment and released in segment order by the outbox. The
per-segment bookkeeping (where its audio starts, its pending ``SpeechEnd``, the
clocks behind the latency metrics) lives here and is dropped with the segment's final.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

from theo.postprocessing.chain import PostProcessingOptions, postprocess_text
from theo.session.config import SessionConfig
from theo.session.context import SessionContext
from theo.session.dictation import ends_inside_entity, same_words, starts_inside_entity
from theo.session.events import (
    FinalWord,
    InputCleared,
    SegmentEnded,
    SessionEvent,
    SpeechEnd,
    SpeechStart,
    TranscriptCorrection,
    TranscriptFinal,
    TranscriptPartial,
)
from theo.session.outbox import OrderedOutbox
from theo.session.segmenter import SAMPLE_RATE
from theo.types import StreamTranscript, TranscriptKind

# Finals further apart than this are not one dictated entity.
_RUN_GAP_MS = 5_000


def ms(samples: int) -> int:
    """Engine samples (16 kHz) in milliseconds."""
    return samples * 1000 // SAMPLE_RATE


class TranscriptEvents:
    """Emits a session's segment and transcript events with their metrics.

    Args:
        context: the session's model and metrics.
        outbox: where events go, in segment order.
        config: the session's configuration in force (read at each final).
    """

    def __init__(
        self,
        context: SessionContext,
        outbox: OrderedOutbox[SessionEvent],
        config: Callable[[], SessionConfig],
    ) -> None:
        self._context = context
        self._outbox = outbox
        self._config = config
        self._offsets: dict[int, int] = {}
        self._vad_ended: dict[int, SpeechEnd] = {}
        self._opened_at: dict[int, float] = {}
        self._ended_at: dict[int, float] = {}
        self._replayed: set[int] = set()
        self._overdue: set[int] = set()
        self._last_partial: dict[int, str] = {}
        self._discarded: set[int] = set()
        # Consecutive finals (segment, raw text, post-processed text) that may hold one
        # entity dictated across pauses.
        self._run: list[tuple[int, str, str]] = []
        self._run_end_ms = 0

    async def opened(self, segment: int, offset: int, onset: int) -> None:
        """The VAD (or a commit) opened ``segment`` at engine sample ``offset``."""
        self._offsets[segment] = offset
        self._opened_at[segment] = time.monotonic()
        self._context.metrics.stream_observation("vad_start", 1.0)
        await self._outbox.add(segment, SpeechStart(segment, ms(onset)))

    async def ended(self, segment: int, position: int, vad_offset: int | None) -> None:
        """``segment`` was closed at engine sample ``position``, by the VAD (its speech
        ended at ``vad_offset``) or by a commit (None)."""
        self._ended_at[segment] = time.monotonic()
        if vad_offset is not None:
            self._vad_ended[segment] = SpeechEnd(segment, ms(vad_offset))
            self._context.metrics.stream_observation("vad_end", 1.0)
        if segment in self._discarded:
            return
        audio_ms = ms(position - self._offsets.get(segment, position))
        end = ms(position if vad_offset is None else vad_offset)
        await self._outbox.add(
            segment, SegmentEnded(segment, end, audio_ms, by_vad=vad_offset is not None)
        )

    async def discard(self, segment: int) -> None:
        """Drop ``segment``'s transcripts from now on (the client cleared its audio)."""
        self._discarded.add(segment)
        await self._outbox.add(segment, InputCleared(segment))

    def replayed(self, segments: list[int]) -> None:
        """These segments were sent again to a fresh worker after a crash."""
        self._replayed.update(segments)

    def newly_overdue(self, now: float, after_s: float) -> list[tuple[int, float]]:
        """Segments whose final is now more than ``after_s`` past their end, with how far
        past (seconds); each is returned once."""
        late = [
            (segment, now - ended)
            for segment, ended in self._ended_at.items()
            if now - ended > after_s and segment not in self._overdue
        ]
        self._overdue.update(segment for segment, _ in late)
        return late

    async def transcript(self, transcript: StreamTranscript) -> None:
        """Emit a partial or final of an open segment."""
        if transcript.kind == TranscriptKind.PARTIAL:
            await self._partial(transcript)
        else:
            await self._final(transcript)

    async def _partial(self, transcript: StreamTranscript) -> None:
        segment = transcript.segment_id
        if segment in self._discarded:
            return
        previous = self._last_partial.get(segment, "")
        unstable = self._config().unstable_partials
        grew = len(transcript.text) > len(previous)
        # Same agreed words: only the unagreed ones changed (shown only if asked for).
        news = unstable and transcript.text == previous
        if segment in self._replayed and not news and not transcript.text.startswith(previous):
            return  # a fresh worker re-hears the segment: keep partials append-only
        if not grew and not news:
            return
        self._last_partial[segment] = transcript.text
        if segment in self._opened_at:
            elapsed = time.monotonic() - self._opened_at.pop(segment)
            self._context.metrics.stream_observation("ttfb", elapsed)
        timestamp_ms = ms(self._offsets.get(segment, 0)) + transcript.end_ms
        await self._outbox.add(
            segment,
            TranscriptPartial(
                segment,
                transcript.text,
                timestamp_ms,
                transcript.unstable_text if unstable else None,
            ),
        )

    async def _final(self, transcript: StreamTranscript) -> None:
        segment = transcript.segment_id
        self._opened_at.pop(segment, None)
        self._last_partial.pop(segment, None)
        self._replayed.discard(segment)
        # Taken before the first await, so a frame arriving while the final is being
        # post-processed does not report the segment overdue a second time.
        ended = self._ended_at.pop(segment, None)
        self._overdue.discard(segment)
        if segment in self._discarded:
            self._discarded.discard(segment)
            self._offsets.pop(segment, None)
            self._vad_ended.pop(segment, None)
            await self._outbox.complete(segment)
            return
        text = await asyncio.to_thread(self._postprocess, transcript)
        metrics = self._context.metrics
        if ended is not None:
            metrics.stream_observation("final_delay", time.monotonic() - ended)
        if transcript.text.strip():
            metrics.final_confidence(self._context.model_name, transcript.confidence)
        offset_ms = ms(self._offsets.pop(segment, 0))
        final = _final_event(transcript, text, offset_ms)
        await self._outbox.add(segment, final)
        correction = await self._across_finals(transcript, final)
        if correction is not None:
            await self._outbox.add(segment, correction)
        speech_end = self._vad_ended.pop(segment, None)
        if speech_end is not None:
            await self._outbox.add(segment, speech_end)
        await self._outbox.complete(segment)

    async def _across_finals(
        self, transcript: StreamTranscript, final: TranscriptFinal
    ) -> TranscriptCorrection | None:
        """The correction of an entity this final completes across earlier finals.

        The finals whose raw words ended inside a dictated entity are kept in a run; a
        final that continues it (opens with a number) is post-processed together with
        them, and when that formats differently (``1, 2, 3. 4, 5, 6.`` becomes
        ``123.456``), the joined text is the correction.
        """
        raw, text = transcript.text.strip(), final.text
        if not raw or not self._config().dictation:
            return None
        correction = None
        gap_ms = final.start_ms - self._run_end_ms
        if self._run and gap_ms <= _RUN_GAP_MS and starts_inside_entity(raw):
            self._run.append((transcript.segment_id, raw, text))
            joined = TranscriptEvents._joined(transcript, " ".join(r for _, r, _ in self._run))
            formatted = await asyncio.to_thread(self._postprocess, joined)
            if not same_words(formatted, " ".join(t for _, _, t in self._run)):
                ids = tuple(s for s, _, _ in self._run)
                correction = TranscriptCorrection(ids, formatted, transcript.language)
        else:
            self._run = [(transcript.segment_id, raw, text)]
        self._run_end_ms = final.end_ms
        if not ends_inside_entity(raw):
            self._run = []
        return correction

    @staticmethod
    def _joined(transcript: StreamTranscript, raw: str) -> StreamTranscript:
        return dataclasses.replace(transcript, text=raw, words=())

    def _postprocess(self, transcript: StreamTranscript) -> str:
        # The batch route post-processes through the same function, so a final and a
        # batch transcript of the same words are formatted alike.
        config = self._config()
        options = PostProcessingOptions(
            self._context.manifest.postprocessing,
            itn=config.enable_itn,
            hot_words=tuple(config.hot_words),
            itn_engine=self._context.itn_engine,
        )
        return postprocess_text(transcript.text, transcript.language or config.language, options)


def _final_event(transcript: StreamTranscript, text: str, offset_ms: int) -> TranscriptFinal:
    return TranscriptFinal(
        segment_id=transcript.segment_id,
        text=text,
        start_ms=offset_ms + transcript.start_ms,
        end_ms=offset_ms + transcript.end_ms,
        language=transcript.language,
        confidence=round(transcript.confidence, 4),
        words=tuple(
            FinalWord(
                word=w.word.strip(),
                start_ms=offset_ms + round(w.start * 1000),
                end_ms=offset_ms + round(w.end * 1000),
                probability=round(w.probability, 4),
            )
            for w in transcript.words
        ),
    )
