"""An in-memory worker for the session core: a scripted stream behind a fake scheduler.

``ScriptedStream`` has the surface of :class:`theo.workers.stt_stream.WorkerStream`
(``send``, ``transcripts``, ``close``, ``served_by``, ``worker_id``) and "hears"
``SCRIPT`` at three words a second of segment audio, like the fake engine of the
integration tier; ``FakeScheduler`` hands such streams out as the real scheduler would.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

from tests.helpers.audio import read_wav
from tests.helpers.server import FIXTURES
from theo.config import SessionSettings
from theo.errors import InvalidRequestError, ModelUnavailableError, WorkerCrashError
from theo.manifest import ModelManifest, PostProcessingConfig
from theo.session.context import SessionContext
from theo.types import ModelType, StreamAudio, StreamTranscript, TranscriptKind, Word

SCRIPT = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
SCRIPT += ["golf", "hotel", "india", "juliet", "kilo", "lima"]
WORDS_PER_SECOND = 3
BYTES_PER_SECOND = 32_000  # engine audio: 16 kHz PCM16


def heard(byte_count: int) -> list[str]:
    """The script words a segment of ``byte_count`` engine bytes holds."""
    return SCRIPT[: math.floor(byte_count / BYTES_PER_SECOND * WORDS_PER_SECOND)]


class ScriptedStream:
    """One worker stream. Partials when a word more is heard, a final on ``is_last``.

    Args:
        crash_after_bytes: the worker dies once it has received this much audio.
        refuse_language: the worker ends the stream on a frame in this language, as the
            STT servicer does for a code its engine does not know.
    """

    worker_id = "stt-fake"

    def __init__(
        self, *, crash_after_bytes: int | None = None, refuse_language: str | None = None
    ) -> None:
        self.received: dict[int, int] = {}
        self.closed = False
        self._crash_after = crash_after_bytes
        self._refuse = refuse_language
        self._broken = False
        self._heard: dict[int, int] = {}
        self._items: asyncio.Queue[StreamTranscript | Exception | None] = asyncio.Queue()

    def served_by(self, worker: Any) -> bool:
        return False  # every replacement is a fresh process

    async def send(self, audio: StreamAudio) -> None:
        if self._broken:
            raise WorkerCrashError("The worker is gone.")
        if self._refuse is not None and audio.language == self._refuse:
            self._end(InvalidRequestError(f"Unsupported language '{audio.language}'.", "language"))
            return
        segment = audio.segment_id
        self.received[segment] = self.received.get(segment, 0) + len(audio.audio_pcm16)
        if self._crash_after is not None and sum(self.received.values()) >= self._crash_after:
            self._end(WorkerCrashError("The worker died."))
            return
        words = heard(self.received[segment])
        if audio.is_last:
            self._items.put_nowait(self._final(segment, words, audio.language))
        elif audio.enable_partials and len(words) > self._heard.get(segment, 0):
            self._heard[segment] = len(words)
            self._items.put_nowait(
                StreamTranscript(TranscriptKind.PARTIAL, segment, " ".join(words))
            )

    async def transcripts(self) -> AsyncIterator[StreamTranscript]:
        while True:
            item = await self._items.get()
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    async def close(self) -> None:
        self.closed = True
        self._items.put_nowait(None)

    def _end(self, error: Exception) -> None:
        self._broken = True
        self._items.put_nowait(error)

    def _final(self, segment: int, words: list[str], language: str | None) -> StreamTranscript:
        step = 1 / WORDS_PER_SECOND
        return StreamTranscript(
            kind=TranscriptKind.FINAL,
            segment_id=segment,
            text=" ".join(words),
            end_ms=self.received[segment] * 1000 // BYTES_PER_SECOND,
            language=language or "en",
            confidence=0.9,
            words=tuple(Word(f" {w}", i * step, (i + 1) * step, 0.9) for i, w in enumerate(words)),
        )


class FakeScheduler:
    """Hands out the given streams in order, then healthy ones; restarts at once."""

    def __init__(self, *streams: ScriptedStream) -> None:
        self.queued = list(streams)
        self.opened: list[ScriptedStream] = []
        self.come_back = True
        self.ready = True

    def open_stream(self, model: str, session_id: str) -> ScriptedStream:
        if not self.ready:
            raise ModelUnavailableError(f"Model '{model}' is loading.")
        stream = self.queued.pop(0) if self.queued else ScriptedStream()
        self.opened.append(stream)
        return stream

    async def wait_ready(self, model: str, timeout_s: float, *, replacing: Any = None) -> bool:
        return self.come_back

    async def transcribe(self, request: Any) -> Any:
        raise NotImplementedError("realtime only")


class RecordingMetrics:
    """The session's metrics, kept in lists."""

    def __init__(self) -> None:
        self.observations: list[tuple[str, float]] = []
        self.force_commits: list[str] = []
        self.recoveries: list[str] = []
        self.confidences: list[float] = []

    def stream_observation(self, name: str, value: float) -> None:
        self.observations.append((name, value))

    def segment_force_committed(self, reason: str) -> None:
        self.force_commits.append(reason)

    def worker_recovery(self, outcome: str) -> None:
        self.recoveries.append(outcome)

    def final_confidence(self, model: str, confidence: float) -> None:
        self.confidences.append(confidence)


def fake_context(scheduler: FakeScheduler, **limits: float) -> SessionContext:
    """A session context on ``scheduler``; backpressure off unless ``limits`` set it."""
    manifest = ModelManifest(
        name="fake-stt",
        type=ModelType.STT,
        engine="fake",
        postprocessing=PostProcessingConfig(itn_backend="builtin"),
    )
    settings = {"max_backlog_s": 1000.0, "rate_limit_after_s": 1000.0, **limits}
    return SessionContext(
        model_name="fake-stt",
        manifest=manifest,
        scheduler=scheduler,  # type: ignore[arg-type]
        itn_engine=None,
        metrics=RecordingMetrics(),
        limits=SessionSettings(**settings),
    )


def speech_frames(name: str = "en_short.wav", frame_ms: int = 20) -> list[bytes]:
    """A fixture as PCM16 frames, followed by 1 s of silence."""
    samples, rate = read_wav(FIXTURES / name)
    pcm = samples.astype("<i2").tobytes() + bytes(rate * 2)
    step = rate * frame_ms // 1000 * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]
