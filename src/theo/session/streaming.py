"""One realtime transcription session: client audio in, VAD and transcript events out.

Data flows one way: client frame -> segmenter (preprocessing + VAD, off the loop) ->
worker stream -> transcripts -> post-processing (finals only, off the loop) -> events,
released in segment order by the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from theo.audio.decode import to_pcm16
from theo.errors import InvalidRequestError, TheoError
from theo.logging import get_logger
from theo.manifest import ModelManifest
from theo.postprocessing.chain import PostProcessingChain, merge_hot_words
from theo.postprocessing.itn.engine import ITNEngine
from theo.preprocessing.chain import PreprocessingChain
from theo.scheduler.base import Scheduler
from theo.scheduler.stream import WorkerStream
from theo.session.config import SessionConfig
from theo.session.outbox import Event, OrderedOutbox
from theo.session.segmenter import (
    SAMPLE_RATE,
    SegmentAudio,
    Segmenter,
    SpeechEnded,
    SpeechStarted,
)
from theo.types import StreamAudio, StreamTranscript, TranscriptKind
from theo.vad.detector import VADDetector

log = get_logger("session")

_CLOSE_DRAIN_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class SessionContext:
    """What a session needs from the server, passed in explicitly."""

    model_name: str
    manifest: ModelManifest
    scheduler: Scheduler
    itn_engine: ITNEngine | None
    on_metric: Callable[[str, float], None]
    """Receives ("ttfb"|"final_delay"|"vad_start"|"vad_end", value) observations."""


def _ms(samples: int) -> int:
    return samples * 1000 // SAMPLE_RATE


class StreamingSession:
    """Owns one session's segmenter, worker stream and event ordering."""

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
        self._outbox = OrderedOutbox(send)
        self._segmenter = self._build_segmenter(config)
        self._stream: WorkerStream | None = None
        self._reader: asyncio.Task[None] | None = None
        self._segment_id = 0
        self._segment_offsets: dict[int, int] = {}
        self._vad_ended: dict[int, Event] = {}
        self._segment_clock: dict[int, float] = {}
        self._end_clock: dict[int, float] = {}
        self._failure: TheoError | None = None
        self._engine_hot_words = self._hot_words_for(config)

    def _hot_words_for(self, config: SessionConfig) -> tuple[str, ...]:
        """The model's and the session's hot words, merged once per configuration."""
        manifest_words = self.context.manifest.postprocessing.hot_words
        return tuple(merge_hot_words(manifest_words, config.hot_words))

    def _build_segmenter(self, config: SessionConfig, base: int = 0) -> Segmenter:
        preprocessing = config.preprocessing.apply_to(self.context.manifest.preprocessing)
        chain = PreprocessingChain.build(preprocessing, config.input_sample_rate)
        return Segmenter(chain, VADDetector(sensitivity=config.vad_sensitivity), base=base)

    @property
    def failure(self) -> TheoError | None:
        """Set when the worker stream broke; the session cannot continue."""
        return self._failure

    async def start(self) -> None:
        """Open the worker stream and announce the session."""
        self._stream = self.context.scheduler.open_stream(self.context.model_name, self.session_id)
        self._reader = asyncio.create_task(self._read_transcripts(self._stream))
        await self._outbox.send_now(
            {
                "type": "session.created",
                "session_id": self.session_id,
                "model": self.context.model_name,
                "config": self.config.model_dump(),
            }
        )

    async def feed(self, pcm16: bytes) -> None:
        """Process one binary frame of PCM16 audio at the configured input rate."""
        if len(pcm16) % 2:
            raise InvalidRequestError(
                "Audio frames must be 16-bit PCM: the frame has an odd number of bytes.",
                param="audio",
            )
        if not pcm16:
            return
        samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
        events = await asyncio.to_thread(self._segmenter.process, samples)
        for event in events:
            await self._handle(event)

    async def _handle(self, event: SpeechStarted | SegmentAudio | SpeechEnded) -> None:
        if isinstance(event, SpeechStarted):
            await self._open_segment(event.offset, event.onset)
        elif isinstance(event, SegmentAudio):
            await self._send_audio(to_pcm16(event.samples), is_last=False, paused=event.paused)
        else:
            segment = self._segment_id
            self._vad_ended[segment] = {
                "type": "vad.speech_end",
                "segment_id": segment,
                "timestamp_ms": _ms(event.offset),
            }
            self.context.on_metric("vad_end", 1.0)
            await self._end_segment()

    async def _open_segment(self, offset: int, onset: int) -> None:
        self._segment_id += 1
        segment = self._segment_id
        self._segment_offsets[segment] = offset
        self._segment_clock[segment] = time.monotonic()
        self.context.on_metric("vad_start", 1.0)
        await self._outbox.add(
            segment, {"type": "vad.speech_start", "segment_id": segment, "timestamp_ms": _ms(onset)}
        )

    async def _send_audio(self, pcm16: bytes, *, is_last: bool, paused: bool = False) -> None:
        stream = self._require_stream()
        config = self.config
        await stream.send(
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

    async def _end_segment(self) -> None:
        self._end_clock[self._segment_id] = time.monotonic()
        await self._send_audio(b"", is_last=True)

    async def commit(self) -> None:
        """``input_audio_buffer.commit``: finalize the open segment now."""
        if not self._segmenter.in_segment:
            return
        self._segmenter.force_end()
        await self._end_segment()
        resumed = self._segmenter.resume_if_speaking()
        if resumed is not None:
            await self._open_segment(resumed.offset, resumed.onset)

    async def configure(self, changes: dict[str, Any]) -> None:
        """Apply ``session.configure``; invalid fields raise before anything changes."""
        updated = self.config.updated(changes)
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
        self.config = updated
        self._engine_hot_words = self._hot_words_for(updated)
        log.info("session_configured", session_id=self.session_id, fields=sorted(changes))

    async def close(self) -> None:
        """Finalize the open segment, wait for outstanding finals, stop the stream."""
        if self._segmenter.in_segment and self._failure is None:
            self._segmenter.force_end()
            await self._end_segment()
        if self._failure is None and self._reader is not None:
            idle = asyncio.ensure_future(self._outbox.wait_idle())
            await asyncio.wait(
                {idle, self._reader},
                timeout=_CLOSE_DRAIN_TIMEOUT_S,
                return_when=asyncio.FIRST_COMPLETED,
            )
            idle.cancel()
        await self.abort()

    async def abort(self) -> None:
        """Stop at once, discarding anything outstanding."""
        if self._stream is not None:
            await self._stream.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, TheoError):
                await self._reader

    def _require_stream(self) -> WorkerStream:
        if self._failure is not None:
            raise self._failure
        assert self._stream is not None, "start() was not called"
        return self._stream

    async def _read_transcripts(self, stream: WorkerStream) -> None:
        try:
            async for transcript in stream.transcripts():
                await self._on_transcript(transcript)
        except TheoError as exc:
            self._failure = exc
            await self._outbox.send_now(
                {
                    "type": "error",
                    "code": "worker_unavailable",
                    "message": exc.message,
                    "recoverable": False,
                }
            )

    async def _on_transcript(self, transcript: StreamTranscript) -> None:
        segment = transcript.segment_id
        offset_ms = _ms(self._segment_offsets.get(segment, 0))
        if transcript.kind == TranscriptKind.PARTIAL:
            if segment in self._segment_clock:
                self.context.on_metric("ttfb", time.monotonic() - self._segment_clock.pop(segment))
            await self._outbox.add(
                segment,
                {
                    "type": "transcript.partial",
                    "segment_id": segment,
                    "text": transcript.text,
                    "timestamp_ms": offset_ms + transcript.end_ms,
                },
            )
            return
        self._segment_clock.pop(segment, None)
        text = await asyncio.to_thread(self._postprocess, transcript)
        if segment in self._end_clock:
            self.context.on_metric("final_delay", time.monotonic() - self._end_clock.pop(segment))
        await self._outbox.add(
            segment,
            {
                "type": "transcript.final",
                "segment_id": segment,
                "text": text,
                "start_ms": offset_ms + transcript.start_ms,
                "end_ms": offset_ms + transcript.end_ms,
                "language": transcript.language,
                "confidence": round(transcript.confidence, 4),
                "words": [
                    {
                        "word": w.word.strip(),
                        "start_ms": offset_ms + round(w.start * 1000),
                        "end_ms": offset_ms + round(w.end * 1000),
                        "probability": round(w.probability, 4),
                    }
                    for w in transcript.words
                ],
            },
        )
        speech_end = self._vad_ended.pop(segment, None)
        if speech_end is not None:
            await self._outbox.add(segment, speech_end)
        self._segment_offsets.pop(segment, None)
        await self._outbox.complete(segment)

    def _postprocess(self, transcript: StreamTranscript) -> str:
        manifest = self.context.manifest
        chain = PostProcessingChain.build(
            manifest.postprocessing,
            itn=self.config.enable_itn,
            hot_words=self.config.hot_words,
            itn_engine=self.context.itn_engine,
        )
        return chain.process(transcript.text, transcript.language or self.config.language)
