"""An in-memory worker for the session core: a scripted stream behind a fake scheduler.

``ScriptedStream`` has the surface of :class:`theo.workers.stt_stream.WorkerStream`
(``send``, ``transcripts``, ``close``, ``served_by``, ``worker_id``) and "hears"
``SCRIPT`` at three words a second of segment audio, like the fake engine of the
integration tier; ``FakeScheduler`` hands such streams out as the real scheduler would.

One level lower, ``GrpcCall`` behaves as a grpcio TranscribeStream call where races hide
(the first write waits for headers a cancelled call never sends; a closed channel's
call raises a bare ``CancelledError``), for the real ``WorkerStream``; and
``RestartingScheduler`` runs one worker through the manager's process generations.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from tests.helpers.audio import read_wav
from tests.helpers.server import FIXTURES
from theo.config import SessionSettings
from theo.errors import (
    InferenceError,
    InvalidRequestError,
    ModelNotFoundError,
    ModelUnavailableError,
    WorkerCrashError,
)
from theo.manifest import ModelManifest, PostProcessingConfig
from theo.session.context import SessionContext
from theo.session.speaker import VoiceChoice
from theo.types import (
    ModelType,
    SpeechChunk,
    SpeechRequest,
    StreamAudio,
    StreamTranscript,
    TranscriptKind,
    Word,
    WorkerState,
)
from theo.wire.proto import stt_worker_pb2 as pb
from theo.workers.handle import WorkerHandle
from theo.workers.stt_stream import WorkerStream

SCRIPT = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
SCRIPT += ["golf", "hotel", "india", "juliet", "kilo", "lima"]
WORDS_PER_SECOND = 3
BYTES_PER_SECOND = 32_000  # engine audio: 16 kHz PCM16


def heard(byte_count: int) -> list[str]:
    """The script words a segment of ``byte_count`` engine bytes holds."""
    return SCRIPT[: math.floor(byte_count / BYTES_PER_SECOND * WORDS_PER_SECOND)]


class ScriptedStream:
    """One worker stream. Partials when a word more is heard, a tentative transcript when
    the speaker pauses (as the worker's early final), a final on ``is_last``.

    Args:
        crash_after_bytes: the worker dies once it has received this much audio.
        refuse_language: the worker ends the stream on a frame in this language, as the
            STT servicer does for a code its engine does not know.
        tentatives: send the tentative transcript at pauses (off: the test sends them).
        final_delay_s: how long after ``is_last`` the final comes (a worker behind).
    """

    worker_id = "stt-fake"

    def __init__(
        self,
        *,
        crash_after_bytes: int | None = None,
        refuse_language: str | None = None,
        tentatives: bool = True,
        final_delay_s: float = 0.0,
    ) -> None:
        self.received: dict[int, int] = {}
        self._final_delay_s = final_delay_s
        self.sent: list[StreamAudio] = []
        self.closed = False
        self._crash_after = crash_after_bytes
        self._refuse = refuse_language
        self._broken = False
        self._heard: dict[int, int] = {}
        self._pausing: set[int] = set()
        self._tentatives = tentatives
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
        self.sent.append(audio)
        self.received[segment] = self.received.get(segment, 0) + len(audio.audio_pcm16)
        if self._crash_after is not None and sum(self.received.values()) >= self._crash_after:
            self._end(WorkerCrashError("The worker died."))
            return
        words = heard(self.received[segment])
        if not audio.speaker_paused:
            self._pausing.discard(segment)
        elif segment not in self._pausing and not audio.is_last and self._tentatives:
            self._pausing.add(segment)
            self._items.put_nowait(
                StreamTranscript(TranscriptKind.TENTATIVE, segment, " ".join(words))
            )
        if audio.is_last:
            final = self._final(segment, words, audio.language)
            if self._final_delay_s:
                asyncio.get_running_loop().call_later(
                    self._final_delay_s, self._items.put_nowait, final
                )
            else:
                self._items.put_nowait(final)
        elif audio.enable_partials:
            if segment not in self._heard:  # a first pass that agrees on nothing yet
                self._heard[segment] = 0
                self._items.put_nowait(
                    StreamTranscript(TranscriptKind.PARTIAL, segment, "", unstable_text=SCRIPT[0])
                )
            if len(words) > self._heard[segment]:
                self._heard[segment] = len(words)
                guess = SCRIPT[len(words) % len(SCRIPT)]  # the pass's unagreed next word
                self._items.put_nowait(
                    StreamTranscript(
                        TranscriptKind.PARTIAL, segment, " ".join(words), unstable_text=guess
                    )
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

    def open_stream(self, model: str, session_id: str, *, avoid: object = None) -> ScriptedStream:
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
        self.speech_ends: list[str] = []
        self.v2v: list[float] = []
        self.muted_s = 0.0
        self.dictation_extensions = 0
        self.lagging = 0

    def stream_observation(self, name: str, value: float) -> None:
        self.observations.append((name, value))

    def segment_force_committed(self, reason: str) -> None:
        self.force_commits.append(reason)

    def worker_recovery(self, outcome: str) -> None:
        self.recoveries.append(outcome)

    def final_confidence(self, model: str, confidence: float) -> None:
        self.confidences.append(confidence)

    def speech_ended(self, reason: str) -> None:
        self.speech_ends.append(reason)

    def voice_to_voice(self, seconds: float) -> None:
        self.v2v.append(seconds)

    def muted_audio(self, seconds: float) -> None:
        self.muted_s += seconds

    def dictation_extended(self) -> None:
        self.dictation_extensions += 1

    def session_lagging(self) -> None:
        self.lagging += 1


TTS_RATE = 16_000


class FakeSpeech:
    """One synthesis: ``chunks`` chunks of ``chunk_s`` seconds of a constant tone, each
    released when the test (or ``auto``) lets it go."""

    def __init__(self, request: SpeechRequest, chunks: int, chunk_s: float, *, auto: bool) -> None:
        self.request = request
        self.closed = False
        self._total = chunks
        self._samples = round(chunk_s * TTS_RATE)
        self._gate: asyncio.Queue[None] = asyncio.Queue()
        self._auto = auto
        self.fail_after: int | None = None

    def release(self, count: int = 1) -> None:
        for _ in range(count):
            self._gate.put_nowait(None)

    def _chunk(self, index: int) -> SpeechChunk:
        pcm = (np.full(self._samples, 8000, dtype="<i2")).tobytes()
        return SpeechChunk(pcm, TTS_RATE, index, self._total)

    @property
    def first(self) -> SpeechChunk:
        return self._chunk(0)

    async def __aiter__(self) -> AsyncIterator[SpeechChunk]:
        for index in range(self._total):
            if index and not self._auto:
                await self._gate.get()
            if self.fail_after is not None and index >= self.fail_after:
                raise InferenceError("The engine failed halfway.")
            yield self._chunk(index)
            await asyncio.sleep(0)

    async def close(self) -> None:
        self.closed = True


class FakeSynthesizer:
    """Voices "tone" (default) and "low"; ``open`` refuses language "xx"."""

    def __init__(self, *, chunks: int = 3, chunk_s: float = 0.5, auto: bool = True) -> None:
        self.opened: list[FakeSpeech] = []
        self._chunks = chunks
        self._chunk_s = chunk_s
        self._auto = auto

    async def choose(self, model: str | None, voice: str, speed: float) -> VoiceChoice:
        if model not in (None, "fake-tts"):
            if model == "fake-stt":
                raise InvalidRequestError("Model 'fake-stt' is not text-to-speech.", "model")
            raise ModelNotFoundError(model, ["fake-tts"])
        if voice not in ("", "tone", "low"):
            raise InvalidRequestError(f"Unknown voice '{voice}'.", param="voice")
        if not 0.5 <= speed <= 2.0:
            raise InvalidRequestError("speed from 0.5 to 2", param="speed")
        return VoiceChoice("fake-tts", voice or "tone")

    async def open(self, request: SpeechRequest) -> FakeSpeech:
        await asyncio.sleep(0)
        if request.language == "xx":
            raise InvalidRequestError("Language 'xx' is not supported.", param="language")
        speech = FakeSpeech(request, self._chunks, self._chunk_s, auto=self._auto)
        self.opened.append(speech)
        return speech


def fake_context(
    scheduler: FakeScheduler, synthesizer: FakeSynthesizer | None = None, **limits: float
) -> SessionContext:
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
        synthesizer=synthesizer,
    )


def speech_frames(name: str = "en_short.wav", frame_ms: int = 20) -> list[bytes]:
    """A fixture as PCM16 frames, followed by 1 s of silence."""
    samples, rate = read_wav(FIXTURES / name)
    pcm = samples.astype("<i2").tobytes() + bytes(rate * 2)
    step = rate * frame_ms // 1000 * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


# ---------------------------------------------------------------------- gRPC-level fakes
# The real WorkerStream over a call that behaves as grpcio's does where races hide, and a
# scheduler whose one worker dies, is noticed dead, and restarts as the manager does it.


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    """A failed call's error, as grpcio raises it."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "scripted")


class GrpcCall:
    """A TranscribeStream call: counts bytes per segment, answers ``is_last`` with a final.

    The final's text is ``"<segment>:<bytes received>"``, so a test sees exactly which
    audio reached the worker. As in grpcio, the first write waits until the call's
    headers are sent and a cancelled call never sends them (``headers=False`` holds
    them back); a cancelled call's iteration raises a bare ``CancelledError``.

    Args:
        headers: whether the call's headers go out at once.
        die_at_write: the worker dies on this write (0-based): it fails, the call ends.
    """

    def __init__(self, *, headers: bool = True, die_at_write: int | None = None) -> None:
        self.headers = asyncio.Event()
        if headers:
            self.headers.set()
        self.frames: list[pb.AudioFrame] = []
        self.received: dict[int, int] = {}
        self.done = False
        self.writes_waiting = 0
        self._die_at = die_at_write
        self._events: asyncio.Queue[pb.TranscriptEvent | BaseException | None] = asyncio.Queue()

    async def write(self, frame: pb.AudioFrame) -> None:
        if self.done:
            raise asyncio.InvalidStateError("RPC already finished.")
        if not self.headers.is_set():
            self.writes_waiting += 1
            await self.headers.wait()  # grpcio: never released once the call is cancelled
        if self._die_at is not None and len(self.frames) >= self._die_at:
            self.die()
            raise rpc_error(grpc.StatusCode.UNAVAILABLE)
        self.frames.append(frame)
        received = self.received.get(frame.segment_id, 0) + len(frame.audio_pcm16)
        self.received[frame.segment_id] = received
        if frame.is_last:
            self._events.put_nowait(
                pb.TranscriptEvent(
                    type=pb.TRANSCRIPT_EVENT_TYPE_FINAL,
                    segment_id=frame.segment_id,
                    text=f"{frame.segment_id}:{received}",
                )
            )

    def die(self) -> None:
        """The worker process died: the connection is reset under the call."""
        if not self.done:
            self.done = True
            self._events.put_nowait(rpc_error(grpc.StatusCode.UNAVAILABLE))

    def cancel(self) -> bool:
        """Cancelled here, or by the manager closing the channel."""
        if self.done:
            return False
        self.done = True
        self._events.put_nowait(asyncio.CancelledError())
        return True

    def end_quietly(self) -> None:
        """The call ends with an OK status: its iteration stops without an error."""
        self.done = True
        self._events.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[pb.TranscriptEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[pb.TranscriptEvent]:
        while (item := await self._events.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item


class RestartingScheduler:
    """One worker with process generations, driven by the test as the manager would.

    Opens the given calls in order, then well-behaved ones. ``wait_ready`` follows the
    real router's rule: a ready worker, not the process a ``replacing`` stream ran on.
    """

    def __init__(self, *calls: GrpcCall) -> None:
        self.worker = WorkerHandle("stt-m", "m", Path("/m"), "fake")
        self.worker.generation = 1
        self.worker.transition(WorkerState.READY)
        self.queued = list(calls)
        self.opened: list[tuple[GrpcCall, WorkerStream]] = []
        self.waits: list[WorkerStream | None] = []
        self.come_back = True

    @property
    def calls(self) -> list[GrpcCall]:
        """Every call opened, in order."""
        return [call for call, _ in self.opened]

    def open_stream(self, model: str, session_id: str, *, avoid: object = None) -> WorkerStream:
        if not self.worker.routable:
            raise ModelUnavailableError(f"Model '{model}' is loading or restarting.")
        call = self.queued.pop(0) if self.queued else GrpcCall()
        stream = WorkerStream(call, self.worker, session_id)
        self.opened.append((call, stream))
        return stream

    def _current(self) -> list[GrpcCall]:
        return [c for c, s in self.opened if s.served_by(self.worker) and not c.done]

    def die(self) -> None:
        """The process dies; the manager has not noticed yet (the worker still looks ready)."""
        for call in self._current():
            call.die()

    def notice(self) -> None:
        """The manager sees the death: CRASHED, and the channel closed (its calls cancelled)."""
        for call in self._current():
            call.cancel()
        self.worker.transition(WorkerState.CRASHED)

    def kill(self) -> None:
        """SIGKILL: the process dies and the manager notices."""
        self.die()
        self.notice()

    def spawn(self) -> None:
        """A new process starts (its model still loading)."""
        self.worker.generation += 1
        self.worker.transition(WorkerState.STARTING)

    def ready(self) -> None:
        """The new process answers READY."""
        self.worker.transition(WorkerState.READY)

    def restart(self) -> None:
        """Spawn and ready at once."""
        self.spawn()
        self.ready()

    async def wait_ready(
        self, model: str, timeout_s: float, *, replacing: WorkerStream | None = None
    ) -> bool:
        self.waits.append(replacing)
        if not self.come_back:
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.worker.routable or (
            replacing is not None and replacing.served_by(self.worker)
        ):
            if loop.time() >= deadline:
                return False
            await self.worker.wait_for_change(deadline - loop.time())
        return True

    async def transcribe(self, request: Any) -> Any:
        raise NotImplementedError("realtime only")


async def eventually(predicate: Callable[[], object], timeout_s: float = 5.0) -> None:
    """Let the loop run until ``predicate()`` holds; fail after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not true within {timeout_s} s")
        await asyncio.sleep(0)  # one turn of the loop for the tasks under test
