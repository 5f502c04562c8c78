"""gRPC servicer of the TTS worker: split the text, synthesize piece by piece, stream.

Synthesis runs on one inference thread, a piece at a time, so concurrent requests take
turns piece by piece and a long text never holds a short one back for long. Each piece
starts as soon as the previous chunk is handed to gRPC, so synthesis never runs ahead of
what the transport accepts (a client that reads slowly holds synthesis back instead of
filling memory). Cancelling the call stops after the piece in progress, whose audio is
discarded.

The first chunk is the time to first audio, so it gets the machine to itself: the next
piece starts ``first_chunk_handoff_s`` after it, once the API process has had the cores
to relay it (on two cores, the engine's threads would otherwise take both while the
first audio is still on its way, adding ~1-2 ms). The first chunk plays for far longer
than that pause, so the rest of the stream is never late for the listener.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing

import grpc
import numpy as np

from theo.audio.pcm import float_to_pcm16
from theo.engines.tts.backend import EngineInfo, SynthesisOptions, TTSBackend
from theo.engines.tts.chunking import SplitPolicy, TextPiece, split_text
from theo.engines.tts.options import UnsupportedParameterError, resolve_options
from theo.errors import InferenceError, InvalidRequestError, ModelUnavailableError
from theo.logging import get_logger
from theo.types import SpeechChunk, WorkerHealth
from theo.wire.errors import abort
from theo.wire.health import tts_health_to_proto, worker_status
from theo.wire.proto import tts_worker_pb2 as pb
from theo.wire.proto import tts_worker_pb2_grpc as pb_grpc
from theo.wire.tts import catalog_to_proto, chunk_to_proto, speech_from_proto

log = get_logger("worker.tts")

_LOADING = ModelUnavailableError("model is still loading")


class TTSWorkerServicer(pb_grpc.TTSWorkerServicer):
    """Serves one loaded voice model."""

    def __init__(
        self,
        backend: TTSBackend,
        model_name: str,
        policy: SplitPolicy | None = None,
        first_chunk_handoff_s: float = 0.005,
    ) -> None:
        self._backend = backend
        self._model_name = model_name
        self._policy = policy or SplitPolicy()
        self._first_chunk_handoff_s = first_chunk_handoff_s
        self._info: EngineInfo | None = None
        self._load_error = ""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="synthesis")
        self._active = 0

    def mark_loaded(self, info: EngineInfo) -> None:
        """Called once the model is in memory; Health turns READY."""
        self._info = info

    def mark_failed(self, error: str) -> None:
        """Called when the model could not be loaded; Health reports ERROR."""
        self._load_error = error

    def _render(self, piece: TextPiece, options: SynthesisOptions, sample_rate: int) -> bytes:
        """Synthesize one piece (on the inference thread) as PCM16 with its pause after."""
        audio = self._backend.synthesize(piece.text, options)
        pause = np.zeros(round(piece.pause_s * sample_rate), dtype=np.float32)
        samples = np.concatenate([audio, pause]) if pause.size else audio
        return float_to_pcm16(samples)

    async def Synthesize(  # noqa: N802 - name fixed by the generated gRPC base class
        self, request: pb.SynthesizeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.AudioChunk]:
        """Stream the audio of ``request.text``, one chunk per piece, in order."""
        info = self._info
        if info is None:
            await abort(context, _LOADING)
        speech = speech_from_proto(request, self._model_name)
        try:
            options = resolve_options(
                info, voice=speech.voice, language=speech.language, speed=speech.speed
            )
        except UnsupportedParameterError as exc:
            await abort(context, InvalidRequestError(exc.message, param=exc.param))
        pieces = split_text(speech.text, self._policy)
        if not pieces:
            await abort(context, InvalidRequestError("The input has nothing to speak.", "input"))
        described = {
            "request_id": speech.request_id,
            "pieces_total": len(pieces),
            "chars": len(speech.text),
            "voice": options.voice,
            "language": options.language,
        }
        # Debug only: at info, the API process would re-log this line while the first piece
        # is being synthesized, taking a core from the engine at the worst moment.
        log.debug("synthesis_started", **described)
        self._active += 1
        done = 0
        try:
            async with aclosing(self._chunks(pieces, options, info.sample_rate)) as chunks:
                async for chunk in chunks:
                    yield chunk_to_proto(chunk)
                    done += 1
        except (asyncio.CancelledError, GeneratorExit):
            log.info(
                "synthesis_cancelled",
                request_id=speech.request_id,
                pieces_done=done,
                pieces_total=len(pieces),
            )
            raise
        except Exception as exc:
            log.exception("synthesis_failed", request_id=speech.request_id, pieces_done=done)
            await abort(context, InferenceError(f"synthesis failed: {exc}"))
        finally:
            self._active -= 1
        log.info("synthesis_done", **described)

    async def _chunks(
        self, pieces: list[TextPiece], options: SynthesisOptions, sample_rate: int
    ) -> AsyncGenerator[SpeechChunk, None]:
        """Synthesize each piece once the previous one has been handed to gRPC.

        The next piece starts right after the send (the first chunk: a handoff pause
        after it), not before it: started earlier, it would take the cores while this
        chunk is still on its way to the client.
        """
        loop = asyncio.get_running_loop()
        for index, piece in enumerate(pieces):
            pcm = await loop.run_in_executor(
                self._executor, self._render, piece, options, sample_rate
            )
            yield SpeechChunk(pcm, sample_rate, index, len(pieces), piece.text)
            if index == 0 and len(pieces) > 1:
                await asyncio.sleep(self._first_chunk_handoff_s)

    async def ListVoices(  # noqa: N802 - name fixed by the generated gRPC base class
        self, request: pb.ListVoicesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListVoicesResponse:
        """The model's voices, languages, sample rate and speed range."""
        info = self._info
        if info is None:
            await abort(context, _LOADING)
        return catalog_to_proto(info.catalog(self._model_name))

    async def Health(  # noqa: N802 - name fixed by the generated gRPC base class
        self, request: pb.HealthRequest, context: grpc.aio.ServicerContext
    ) -> pb.HealthResponse:
        """Report load state; a worker counts as alive only if it answers this."""
        info = self._info
        return tts_health_to_proto(
            WorkerHealth(
                status=worker_status(self._load_error, info is not None, self._active),
                device=info.device if info else "",
                error=self._load_error,
                model_name=self._model_name,
                engine=self._backend.engine_name,
                active_requests=self._active,
            )
        )

    def shutdown(self) -> None:
        """Drop queued synthesis and release the inference thread."""
        self._executor.shutdown(wait=False, cancel_futures=True)
