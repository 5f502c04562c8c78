"""The streamed bodies of ``/v1/audio/speech``: raw audio or OpenAI-style server-sent events.

Both relay a :class:`SpeechStream` whose first chunk has already arrived (so the status is
settled), record the speech metrics and always close the stream, which cancels synthesis
when the client goes away. An engine failure after the first chunk cannot change the
status any more: an audio body is cut off (the client sees an incomplete transfer, never a
silently short file); an SSE body ends with an ``error`` event.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from theo.errors import TheoError
from theo.logging import get_logger, mark_logged
from theo.server.errors import classify
from theo.server.metrics import Metrics
from theo.server.speech.encoders import SpeechEncoder
from theo.server.speech.relay import encoded_audio
from theo.workers.tts_client import SpeechStream

log = get_logger("server.speech")


class SpeechResponse(StreamingResponse):
    """A streaming speech response that always ends its run, however streaming ends.

    Starlette cancels the sending task when the client disconnects; closing the body
    iterator and the run then cancels synthesis at once, instead of whenever the iterator
    is garbage-collected (or never, if the body was never started).
    """

    def __init__(
        self,
        content: AsyncGenerator[bytes, None],
        run: SpeechRun,
        media_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._content = content
        self._run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream the body, then close the iterator and the run."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._content.aclose()
            await self._run.close()


@dataclass
class SpeechRun:
    """One speech request being streamed: its stream, metrics and closing log line."""

    stream: SpeechStream
    metrics: Metrics
    model: str
    response_format: str
    request_id: str
    arrived: float
    """``time.perf_counter()`` when the request arrived."""
    opened: float = 0.0
    """``time.perf_counter()`` when the worker's first chunk arrived."""
    outcome: str = "cancelled"
    """ok, error or cancelled (until the relay finishes, a run counts as cancelled)."""
    _first_sent: bool = field(default=False, repr=False)
    _closed: bool = field(default=False, repr=False)

    def sending(self) -> None:
        """Audio bytes are about to leave: the first time, record the time to first byte."""
        if not self._first_sent:
            self._first_sent = True
            ttfb = time.perf_counter() - self.arrived
            self.metrics.tts_first_audio(self.model, ttfb)
            log.info(
                "speech_first_audio",
                request_id=self.request_id,
                ttfb_s=round(ttfb, 4),
                first_chunk_s=round(self.opened - self.arrived, 4),
            )

    def synthesized(self) -> None:
        """The worker sent its last chunk."""
        self.metrics.tts_synthesis_done(self.model, time.perf_counter() - self.arrived)

    async def close(self) -> None:
        """Close the stream (cancelling synthesis if it runs), count and log the request once."""
        if self._closed:
            return
        self._closed = True
        await self.stream.close()
        self.metrics.tts_request_done(self.model, self.response_format, self.outcome)
        log.info(
            "speech_done" if self.outcome == "ok" else f"speech_{self.outcome}",
            request_id=self.request_id,
            model=self.model,
            chunks=self.stream.chunks,
            audio_s=round(self.stream.audio_s, 2),
            elapsed_s=round(time.perf_counter() - self.arrived, 3),
        )


async def _relay(run: SpeechRun, encoder: SpeechEncoder) -> AsyncGenerator[bytes, None]:
    """Encoded audio with the run's bookkeeping; the run is always closed at the end."""
    try:
        async with aclosing(encoded_audio(run.stream, encoder)) as audio:
            async for data in audio:
                run.sending()
                yield data
        run.synthesized()
        run.outcome = "ok"
    except TheoError:
        run.outcome = "error"
        raise
    finally:
        await run.close()


async def audio_body(run: SpeechRun, encoder: SpeechEncoder) -> AsyncGenerator[bytes, None]:
    """The encoded audio bytes, as they are produced."""
    relay = _relay(run, encoder)
    try:
        async for data in relay:
            yield data
    except TheoError as exc:
        log.error("speech_failed_mid_stream", request_id=run.request_id, error=exc.message)
        # Raising cuts the transfer off (the client must not take a short file for a whole
        # one); the line above is the only log of it.
        raise mark_logged(exc) from None
    finally:
        await relay.aclose()


def _event(payload: dict[str, object]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


async def sse_body(run: SpeechRun, encoder: SpeechEncoder) -> AsyncGenerator[bytes, None]:
    """``speech.audio.delta`` events carrying base64 audio, then ``speech.audio.done``."""
    relay = _relay(run, encoder)
    try:
        async for data in relay:
            yield _event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})
        yield _event({"type": "speech.audio.done"})
    except TheoError as exc:
        log.error("speech_failed_mid_stream", request_id=run.request_id, error=exc.message)
        _, error_type, code = classify(exc)
        yield _event(
            {"type": "error", "error": {"message": exc.message, "type": error_type, "code": code}}
        )
    finally:
        await relay.aclose()
