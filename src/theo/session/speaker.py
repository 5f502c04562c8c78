"""A session's voice: ``tts.speak`` replies queued, synthesized and streamed in order.

Each reply is synthesized by a text-to-speech worker (through a :class:`Synthesizer` the
server provides), converted to the session's output format and emitted as
``SpeakingStarted``, ``OutputAudio``\\* and ``SpeakingEnded``, in the session's event
stream. Every accepted reply ends with exactly one ``SpeakingEnded``, and nothing of a
reply follows it.

The speaker also keeps the playback clock for mute-on-speak: the client plays the audio
as it comes, so its speech lasts until the first audio's arrival plus the duration of all
audio sent (replies play back to back), not merely until the last byte was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from theo.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    ModelUnavailableError,
    TheoError,
)
from theo.logging import get_logger
from theo.session import errors
from theo.session.audio_format import AudioEncoding
from theo.session.config import SessionConfig
from theo.session.context import SessionMetrics
from theo.session.errors import ClientError
from theo.session.event_queue import EventStream
from theo.session.events import OutputAudio, SpeakingEnded, SpeakingEndReason, SpeakingStarted
from theo.session.output_audio import OutputConverter
from theo.session.speak_request import SpeakRequest
from theo.types import SpeechChunk, SpeechRequest

log = get_logger("session.speaker")

MAX_QUEUED_REPLIES = 32
"""Replies one session may have waiting; more are refused (param ``request_id``)."""
_MAX_AUDIO_BACKLOG_S = 10.0
"""Seconds of audio the speaker lets wait for the transport before it waits too."""
MAX_AHEAD_S = 10.0
"""Seconds of audio a call's speaker sends ahead of its playback clock: a phone line plays
in real time, and a reply synthesized much further ahead would only wait in memory (a
WebSocket's own send buffer bounds it there)."""
_ANSWER_WINDOW_S = 10.0
"""A reply requested this long after a final answers it (voice-to-voice latency)."""


@dataclass(frozen=True, slots=True)
class VoiceChoice:
    """The model and voice a reply is spoken with, defaults resolved."""

    model: str
    voice: str


class SpeechAudio(Protocol):
    """An open synthesis whose first chunk has arrived (``SpeechStream``)."""

    @property
    def first(self) -> SpeechChunk:
        """The first chunk."""

    def __aiter__(self) -> AsyncIterator[SpeechChunk]:
        """Every chunk, the first included."""

    async def close(self) -> None:
        """Stop the synthesis if it still runs."""


class Synthesizer(Protocol):
    """The text-to-speech side of the server, as a session sees it."""

    async def choose(self, model: str | None, voice: str, speed: float) -> VoiceChoice:
        """Resolve the reply's model (None: the first ready one) and voice.

        Raises:
            InvalidRequestError: not a text-to-speech model, an unknown voice or a speed
                the model does not take (param ``model``, ``voice`` or ``speed``).
            ModelNotFoundError, ModelUnavailableError: no such model, or none ready.
        """

    async def open(self, request: SpeechRequest) -> SpeechAudio:
        """Start synthesizing; returns once the first chunk has arrived."""


@dataclass(eq=False)
class _Reply:
    request: SpeakRequest
    choice: VoiceChoice
    v2v_from: float | None
    """When the caller's speech that this reply answers ended (for voice-to-voice)."""
    ended: bool = False
    sent_s: float = 0.0
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    opening: asyncio.Task[SpeechAudio] | None = field(default=None, repr=False)
    """Its synthesis, started while the reply before it finishes playing."""

    @property
    def request_id(self) -> str:
        return self.request.request_id


class Speaker:
    """Queues, speaks and cancels one session's replies.

    Args:
        session_id: for logs.
        synthesizer: the server's text-to-speech side; None when it serves no TTS model.
        events: the session's event stream.
        metrics: where replies, voice-to-voice latency and muted audio are counted.
        config: the session's configuration in force (output format, mute settings).
        clock: monotonic seconds (tests pass their own).
        max_ahead_s: the most audio sent ahead of the playback clock (None: no limit).
        on_audio: told of each piece of audio as it is sent (the echo guard's reference).
        on_stopped: told when the reply playing is stopped (its unplayed audio is void).
    """

    def __init__(
        self,
        session_id: str,
        synthesizer: Synthesizer | None,
        events: EventStream,
        metrics: SessionMetrics,
        config: Callable[[], SessionConfig],
        clock: Callable[[], float] = time.monotonic,
        max_ahead_s: float | None = None,
        on_audio: Callable[[OutputAudio], None] | None = None,
        on_stopped: Callable[[], None] | None = None,
    ) -> None:
        self._session_id = session_id
        self._on_audio = on_audio
        self._on_stopped = on_stopped
        self._max_ahead_s = max_ahead_s
        self._synthesizer = synthesizer
        self._events = events
        self._metrics = metrics
        self._config = config
        self._clock = clock
        self._queue: deque[_Reply] = deque()
        self._current: _Reply | None = None
        self._runner: asyncio.Task[None] | None = None
        self._playback_end = 0.0
        self._answering: tuple[float, float] | None = None  # (speech end, final's time)
        self._closing: set[asyncio.Future[None]] = set()

    @property
    def speaking(self) -> bool:
        """Whether a reply is being spoken (until its audio has played) or waits to be."""
        return any(not reply.ended for reply in self._replies())

    def playing(self) -> bool:
        """Whether audio the session sent is still playing on the client."""
        return self._clock() < self._playback_end

    def muted(self) -> bool:
        """Whether mute-on-speak holds: the session's speech is (still) playing."""
        config = self._config()
        if not config.tts_mute or config.barge_in or not self._playback_end:
            return False
        return self._clock() < self._playback_end + config.tts_mute_tail_ms / 1000

    def caller_spoke(self, speech_end: float) -> None:
        """A final was sent for caller speech that ended at ``speech_end`` (monotonic):
        the next reply answers it (voice-to-voice latency)."""
        self._answering = (speech_end, self._clock())

    async def check_model(self, model: str) -> None:
        """Refuse a ``tts_model`` setting that names no usable text-to-speech model.

        Raises:
            InvalidRequestError: as :meth:`speak` does for ``model`` (param ``tts_model``).
        """
        if self._synthesizer is None:
            raise InvalidRequestError("This server serves no text-to-speech model.", "tts_model")
        try:
            await self._synthesizer.choose(model, "", 1.0)
        except ModelNotFoundError as exc:
            raise InvalidRequestError(exc.message, "tts_model") from exc
        except InvalidRequestError as exc:
            if exc.param != "model":
                raise
            raise InvalidRequestError(exc.message, "tts_model") from exc
        except ModelUnavailableError:
            pass  # installed, still loading: the setting is right

    async def speak(self, request: SpeakRequest) -> None:
        """Queue a reply; it is spoken after the ones before it.

        Raises:
            InvalidRequestError: the model, voice or speed cannot be used, the request id
                is in use, or too many replies wait (param names the field).
            ClientError: the model has no ready worker (``model_unavailable``).
        """
        if self._synthesizer is None:
            raise InvalidRequestError("This server serves no text-to-speech model.", "model")
        if any(r.request_id == request.request_id for r in self._replies()):
            raise InvalidRequestError(
                f"Request id '{request.request_id}' is already queued or speaking.", "request_id"
            )
        if len(self._queue) >= MAX_QUEUED_REPLIES:
            raise InvalidRequestError(
                f"At most {MAX_QUEUED_REPLIES} replies may wait; cancel some first.", "request_id"
            )
        model = request.model or self._config().tts_model
        try:
            choice = await self._synthesizer.choose(model, request.voice, request.speed)
        except ModelNotFoundError as exc:
            raise InvalidRequestError(exc.message, "model") from exc
        except ModelUnavailableError as exc:
            raise ClientError("model_unavailable", exc.message) from exc
        answering, self._answering = self._answering, None
        v2v_from = None
        if answering is not None and self._clock() - answering[1] <= _ANSWER_WINDOW_S:
            v2v_from = answering[0]
        reply = _Reply(request, choice, v2v_from)
        self._queue.append(reply)
        log.info(
            "speech_queued",
            session_id=self._session_id,
            request_id=request.request_id,
            model=choice.model,
            chars=len(request.text),
        )
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name=f"speak-{self._session_id}")

    def cancel(self, request_id: str | None = None) -> None:
        """Stop ``request_id`` (queued or speaking), or every reply; unmutes at once.

        Raises:
            InvalidRequestError: no such reply is queued or speaking (param ``request_id``).
        """
        replies = [r for r in self._replies() if request_id is None or r.request_id == request_id]
        if request_id is not None and not replies:
            raise InvalidRequestError(
                f"No reply '{request_id}' is queued or speaking.", param="request_id"
            )
        self._stop(replies, SpeakingEndReason.CANCELLED)
        if request_id is None:
            self._playback_end = 0.0

    def barge_in(self) -> None:
        """The caller spoke over the session: every reply ends (reason ``barge_in``)."""
        self._stop(self._replies(), SpeakingEndReason.BARGE_IN)
        self._playback_end = 0.0

    def _stop(self, replies: list[_Reply], reason: SpeakingEndReason) -> None:
        for reply in replies:
            self._end(reply, reason)
            if reply is self._current and reply.task is not None:
                reply.task.cancel()
                self._playback_end = 0.0  # what it sent stops playing on the client
                if self._on_stopped is not None:
                    self._on_stopped()
            elif reply in self._queue:
                self._queue.remove(reply)
                self._discard(reply)

    async def close(self) -> None:
        """Cancel every reply (their ``SpeakingEnded`` come first) and stop."""
        if self.speaking:
            self.cancel()
        await self.abort()

    async def abort(self) -> None:
        """Stop at once, without events (the session is gone)."""
        runner = self._runner
        self.stop()
        if runner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    def stop(self) -> None:
        """Stop at once, without events and without waiting (the session ended)."""
        for reply in self._queue:
            self._discard(reply)
        self._queue.clear()
        runner, self._runner = self._runner, None
        if runner is not None and not runner.done():
            runner.cancel()

    def _replies(self) -> list[_Reply]:
        current = [self._current] if self._current is not None else []
        return current + list(self._queue)

    async def _run(self) -> None:
        while self._queue:
            reply = self._current = self._queue.popleft()
            reply.task = asyncio.create_task(self._say(reply), name=f"say-{reply.request_id}")
            try:
                await asyncio.wait({reply.task})
            except asyncio.CancelledError:
                reply.task.cancel()
                raise
            finally:
                self._current = None

    def _open(self, reply: _Reply) -> asyncio.Task[SpeechAudio]:
        """The reply's synthesis, started now unless it already was."""
        if reply.opening is None:
            request, choice = reply.request, reply.choice
            assert self._synthesizer is not None
            speech = SpeechRequest(
                model=choice.model,
                text=request.text,
                voice=choice.voice,
                language=request.language,
                speed=request.speed,
                request_id=request.request_id,
            )
            reply.opening = asyncio.create_task(
                self._synthesizer.open(speech), name=f"open-{reply.request_id}"
            )
        return reply.opening

    def _discard(self, reply: _Reply) -> None:
        """Stop a queued reply's early synthesis, closing its stream if it opened."""
        task, reply.opening = reply.opening, None
        if task is not None:
            task.cancel()
            task.add_done_callback(self._close_unused)

    def _close_unused(self, task: asyncio.Task[SpeechAudio]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        closing = asyncio.ensure_future(task.result().close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def _say(self, reply: _Reply) -> None:
        request = reply.request
        stream: SpeechAudio | None = None
        try:
            stream = await self._open(reply)
            await self._stream(reply, stream)
        except TheoError as exc:
            if not reply.ended:
                log.info(
                    "speech_failed",
                    session_id=self._session_id,
                    request_id=request.request_id,
                    error=exc.message,
                )
                self._events.emit(errors.speech_failure(exc, request.request_id))
                self._end(reply, SpeakingEndReason.ERROR)
        finally:
            if stream is not None:
                await stream.close()

    async def _stream(self, reply: _Reply, stream: SpeechAudio) -> None:
        config = self._config()
        encoding = AudioEncoding(config.output_audio_format)
        converter = OutputConverter(stream.first.sample_rate, config.output_rate, encoding)
        if reply.ended:
            return
        self._events.emit(
            SpeakingStarted(
                reply.request_id,
                reply.choice.model,
                reply.choice.voice,
                converter.output_rate,
                str(encoding),
            )
        )
        backlog_limit = int(_MAX_AUDIO_BACKLOG_S * converter.bytes_per_second)
        async for chunk in stream:
            await self._send(reply, converter, converter.convert(chunk.pcm16))
            await self._events.wait_audio_backlog(backlog_limit)
            ahead_s = self._playback_end - self._clock()
            if self._max_ahead_s is not None and ahead_s > self._max_ahead_s:
                await asyncio.sleep(ahead_s - self._max_ahead_s)
            if reply.ended:
                return
        await self._send(reply, converter, converter.flush())
        if self._queue:
            self._open(self._queue[0])  # the next reply is ready when this one has played
        # Speaking ends when the audio has played on the client, not when it was sent: a
        # barge-in or tts.cancel can stop it until then.
        playing_s = self._playback_end - self._clock()
        if playing_s > 0:
            await asyncio.sleep(playing_s)
        self._end(reply, SpeakingEndReason.DONE)

    async def _send(self, reply: _Reply, converter: OutputConverter, audio: bytes) -> None:
        if not audio or reply.ended:
            return
        now = self._clock()
        if reply.sent_s == 0.0 and reply.v2v_from is not None:
            self._metrics.voice_to_voice(now - reply.v2v_from)
        duration_s = len(audio) / converter.bytes_per_second
        reply.sent_s += duration_s
        # Replies play back to back: this audio plays after whatever was sent before it.
        self._playback_end = max(self._playback_end, now) + duration_s
        event = OutputAudio(reply.request_id, audio, converter.output_rate, str(converter.encoding))
        if self._on_audio is not None:
            self._on_audio(event)
        self._events.emit(event)

    def _end(self, reply: _Reply, reason: SpeakingEndReason) -> None:
        if reply.ended:
            return
        reply.ended = True
        duration_ms = round(reply.sent_s * 1000)
        self._events.emit(SpeakingEnded(reply.request_id, reason, duration_ms))
        self._metrics.speech_ended(str(reason))
        log.info(
            "speech_ended",
            session_id=self._session_id,
            request_id=reply.request_id,
            reason=str(reason),
            duration_ms=duration_ms,
        )
