"""Send speech requests to TTS workers and stream their audio back.

The API-process side of text-to-speech: pick the least-loaded ready worker of the model,
open its Synthesize stream, and map worker failures to Theo's domain errors. A stream is
handed out only once its first chunk has arrived, so a request the engine rejects (or a
worker that dies at once) still gets a proper error status before any audio is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc

from theo.config import Settings
from theo.errors import (
    InferenceError,
    ModelUnavailableError,
)
from theo.logging import get_logger
from theo.types import WorkerState
from theo.wire.proto import tts_worker_pb2 as pb
from theo.workers.handle import WorkerHandle
from theo.workers.manager import WorkerManager
from theo.workers.rpc import being_cancelled, map_rpc_error, worker_lost

log = get_logger("synthesis")


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    """One text to speak with a model's voice."""

    model: str
    text: str
    voice: str = ""
    """Voice id; empty means the model's default voice."""
    language: str = ""
    """Language code such as ``pt-br``; empty means the voice's own."""
    speed: float = 1.0
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class SpeechChunk:
    """The audio of one piece of the text: mono PCM16 LE."""

    pcm16: bytes
    sample_rate: int
    index: int
    total: int

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return len(self.pcm16) / 2 / self.sample_rate


@dataclass(frozen=True, slots=True)
class Voice:
    """One voice of a model."""

    id: str
    name: str
    language: str
    gender: str


@dataclass(frozen=True, slots=True)
class VoiceCatalog:
    """What a TTS model offers: voices, languages, sample rate and speed range."""

    model: str
    voices: tuple[Voice, ...]
    default_voice: str
    languages: tuple[str, ...]
    sample_rate: int
    min_speed: float
    max_speed: float


def _chunk(message: pb.AudioChunk) -> SpeechChunk:
    return SpeechChunk(message.audio_pcm16, message.sample_rate, message.index, message.total)


class SpeechStream:
    """An open Synthesize call whose first chunk has arrived.

    Iterate it for every chunk, first included; :meth:`close` cancels the synthesis if it
    is still running. Errors after the first chunk surface from the iteration as domain
    errors.
    """

    def __init__(self, call: Any, worker: WorkerHandle, generation: int) -> None:
        self._call = call
        self._worker = worker
        self._generation = generation
        self._first: SpeechChunk | None = None
        self._finished = False
        self._closed = False
        self.audio_s = 0.0
        """Seconds of audio received so far."""
        self.chunks = 0
        """Chunks received so far."""

    @property
    def first(self) -> SpeechChunk:
        """The first chunk (available once the stream is open)."""
        if self._first is None:
            raise RuntimeError("the stream has not started")
        return self._first

    @property
    def finished(self) -> bool:
        """Whether the worker sent its last chunk."""
        return self._finished

    async def _read(self) -> SpeechChunk | None:
        try:
            message = await self._call.read()
        except grpc.aio.AioRpcError as exc:
            raise map_rpc_error(exc, self._worker) from exc
        except asyncio.CancelledError:
            if being_cancelled():
                raise
            # The manager closed the channel of a crashed worker, cancelling this call.
            raise worker_lost(self._worker) from None
        if message is grpc.aio.EOF:
            self._finished = True
            return None
        chunk = _chunk(message)
        self.audio_s += chunk.duration_s
        self.chunks += 1
        return chunk

    async def start(self) -> None:
        """Wait for the first chunk.

        Raises:
            TheoError: the worker rejected the request or failed before any audio.
        """
        first = await self._read()
        if first is None:
            raise InferenceError("The engine produced no audio for this input.")
        self._first = first

    async def __aiter__(self) -> AsyncIterator[SpeechChunk]:
        yield self.first
        while (chunk := await self._read()) is not None:
            yield chunk

    async def close(self) -> None:
        """Cancel the synthesis if it still runs; release the worker's request slot."""
        if self._closed:
            return
        self._closed = True
        if not self._finished:
            self._call.cancel()
        self._worker.end_request(self._generation)


class SynthesisClient:
    """Routes speech requests to the TTS workers of the :class:`WorkerManager`."""

    def __init__(self, manager: WorkerManager, settings: Settings) -> None:
        self._manager = manager
        self._settings = settings

    def _pick(self, model: str) -> WorkerHandle:
        workers = self._manager.workers_for(model)
        routable = [w for w in workers if w.routable and w.tts_stub is not None]
        if routable:
            return min(routable, key=lambda w: w.active_requests)
        # Same rule as the STT scheduler: a worker past its restart limit is not coming back.
        if any(w.state == WorkerState.STARTING for w in workers) or any(
            w.state == WorkerState.CRASHED and not w.last_error.startswith("crashed ")
            for w in workers
        ):
            raise ModelUnavailableError(f"Model '{model}' is loading or restarting; retry shortly.")
        detail = "; ".join(w.last_error for w in workers if w.last_error) or "no worker running"
        raise ModelUnavailableError(f"Model '{model}' is unavailable: {detail}.")

    async def open(self, request: SpeechRequest) -> SpeechStream:
        """Start synthesizing on a worker and wait for the first chunk.

        Raises:
            ModelUnavailableError: no worker of the model is ready.
            InvalidRequestError: the engine cannot honour the voice, language, speed or text.
            TheoError: the worker failed (see :func:`map_rpc_error`).
        """
        worker = self._pick(request.model)
        assert worker.tts_stub is not None
        generation = worker.begin_request()
        call = worker.tts_stub.Synthesize(
            pb.SynthesizeRequest(
                request_id=request.request_id,
                text=request.text,
                voice=request.voice,
                speed=request.speed,
                language=request.language,
            ),
            timeout=self._settings.request_timeout_s,
        )
        stream = SpeechStream(call, worker, generation)
        try:
            await stream.start()
        except BaseException:
            await stream.close()
            raise
        return stream

    async def voices(self, model: str) -> VoiceCatalog:
        """The voices of ``model``, asked of one of its workers."""
        worker = self._pick(model)
        assert worker.tts_stub is not None
        try:
            answer = await worker.tts_stub.ListVoices(
                pb.ListVoicesRequest(), timeout=self._settings.worker.health_timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            raise map_rpc_error(exc, worker) from exc
        except asyncio.CancelledError:
            if being_cancelled():
                raise
            raise worker_lost(worker) from None
        return VoiceCatalog(
            model=model,
            voices=tuple(Voice(v.id, v.name, v.language, v.gender) for v in answer.voices),
            default_voice=answer.default_voice,
            languages=tuple(answer.languages),
            sample_rate=answer.sample_rate,
            min_speed=round(answer.min_speed, 4),
            max_speed=round(answer.max_speed, 4),
        )
