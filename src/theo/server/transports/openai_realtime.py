"""WS /v1/realtime in OpenAI's Realtime transcription protocol: one more adapter on the
session core.

A client is served this protocol when it connects with ``?intent=transcription`` (the
current SDK), with the header ``OpenAI-Beta: realtime=v1`` (the beta SDK), or when its
first message is ``session.update``/``transcription_session.update``. Audio comes as
base64 ``input_audio_buffer.append`` events (24 kHz PCM16 by default, or G.711); the
session core starts at the first audio, so ``session.update`` events sent before it (as
agent frameworks do, even before ``session.created`` arrives) only shape its
configuration, the transcription model included. Events go out through one lock, so the
receive path's errors and the session's events never interleave inside a message.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
from typing import Any

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from theo.errors import InvalidRequestError, ModelNotFoundError, ModelUnavailableError, TheoError
from theo.logging import get_logger
from theo.server.state import AppState
from theo.server.transports.admission import new_session_id, prepare
from theo.server.transports.lifecycle import being_cancelled, finish_sending
from theo.server.transports.openai_events import Message, OpenAIEvents, error_message, event_id
from theo.server.transports.openai_session import (
    OPENAI_PCM_RATE,
    Dialect,
    OpenAIParamError,
    parse_update,
    session_object,
)
from theo.session import errors
from theo.session.config import (
    MAX_HOLD_TIMEOUT_MS,
    MAX_INIT_TIMEOUT_MS,
    SessionConfig,
    check_supported,
)
from theo.session.core import RealtimeSession
from theo.session.events import CloseReason
from theo.types import ModelType

log = get_logger("server.openai_realtime")

MAX_EVENT_BYTES = 15 * 1024 * 1024
"""OpenAI's limit on one client event (an append of up to 15 MiB)."""
_MAX_CONTROL_BYTES = 64 * 1024
_PARSE_IN_THREAD_BYTES = 256 * 1024  # larger events are decoded off the event loop
_MIN_COMMIT_MS = 100
_PUSH_CHUNK_S = 0.1
_MAX_CONSECUTIVE_ERRORS = 20
_CLOSE_NORMAL = 1000
_CLOSE_POLICY = 1008
_CLOSE_INTERNAL = 1011
_CLOSE_TRY_AGAIN = 1013
_UPDATE_TYPES = ("session.update", "transcription_session.update")
_CLIENT_EVENTS = (
    *_UPDATE_TYPES,
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
)

Close = tuple[int, str]

# Theo's settings by the OpenAI field a client set them with, for error params.
_PARAMS = {
    Dialect.CURRENT: {
        "language": "session.audio.input.transcription.language",
        "prompt": "session.audio.input.transcription.prompt",
        "hot_words": "session.audio.input.transcription.keywords",
        "vad_threshold": "session.audio.input.turn_detection.threshold",
        "vad_silence_ms": "session.audio.input.turn_detection.silence_duration_ms",
        "vad_prefix_padding_ms": "session.audio.input.turn_detection.prefix_padding_ms",
        "input_sample_rate": "session.audio.input.format.rate",
    },
    Dialect.BETA: {
        "language": "session.input_audio_transcription.language",
        "prompt": "session.input_audio_transcription.prompt",
        "vad_threshold": "session.turn_detection.threshold",
        "vad_silence_ms": "session.turn_detection.silence_duration_ms",
        "vad_prefix_padding_ms": "session.turn_detection.prefix_padding_ms",
    },
}


def dialect_of(websocket: WebSocket) -> Dialect | None:
    """The OpenAI dialect the connection asks for by its URL or headers, if any."""
    if "realtime=v1" in websocket.headers.get("openai-beta", ""):
        return Dialect.BETA
    if websocket.query_params.get("intent") == "transcription":
        return Dialect.CURRENT
    return None


def dialect_of_first_message(message: Any) -> Dialect | None:
    """The OpenAI dialect a first message speaks, if it is an OpenAI session update."""
    text = message.get("text") if message.get("type") == "websocket.receive" else None
    if not text or len(text) > _MAX_CONTROL_BYTES:
        return None
    with contextlib.suppress(ValueError):
        event = json.loads(text)
        if isinstance(event, dict):
            if event.get("type") == "transcription_session.update":
                return Dialect.BETA
            if event.get("type") == "session.update":
                session = event.get("session")
                current = isinstance(session, dict) and ("type" in session or "audio" in session)
                return Dialect.CURRENT if current else Dialect.BETA
    return None


def _stt_model(state: AppState, name: str | None) -> str | None:
    """``name`` when it is an installed streaming STT model, else the first such model."""
    streaming = [
        model_name
        for model_name, model in state.models.items()
        if model.manifest.type == ModelType.STT and model.manifest.capabilities.streaming
    ]
    if name in streaming:
        return name
    return streaming[0] if streaming else None


class SlowConsumerError(Exception):
    """The client stopped reading: one message could not be sent within the timeout."""


class OpenAIConnection:
    """One OpenAI Realtime client and, from its first audio, its session.

    Raises (on construction):
        ModelNotFoundError: no streaming speech-to-text model is installed.
    """

    def __init__(
        self, websocket: WebSocket, state: AppState, dialect: Dialect, model: str | None
    ) -> None:
        self.websocket = websocket
        self._state = state
        self.dialect = dialect
        self.session_id = new_session_id()
        model_name = _stt_model(state, model)
        if model_name is None:
            raise ModelNotFoundError(model or "", list(state.models))
        language = websocket.query_params.get("language")
        self.context, config = prepare(state, model_name, language)
        # OpenAI sessions idle for long stretches (an agent waiting for its user).
        self.config = config.updated(
            {
                "input_sample_rate": OPENAI_PCM_RATE,
                "init_timeout_ms": MAX_INIT_TIMEOUT_MS,
                "hold_timeout_ms": MAX_HOLD_TIMEOUT_MS,
            }
        )
        self.session: RealtimeSession | None = None
        self.pump: asyncio.Task[None] | None = None
        self._noise_type: str | None = None
        self._events = OpenAIEvents(dialect, self._view)
        self._lock = asyncio.Lock()
        self._send_timeout_s = state.settings.session.send_timeout_s
        self._errors_in_a_row = 0
        self._client_event_id: str | None = None
        self.started = time.monotonic()

    def _view(self, config: SessionConfig) -> Message:
        return session_object(
            self.session_id, self.context.model_name, config, self.dialect, self._noise_type
        )

    async def send(self, message: Message) -> None:
        """Send one event as JSON text.

        Raises:
            SlowConsumerError: it waited longer than the send timeout.
        """
        text = json.dumps(message, ensure_ascii=False)
        async with self._lock:
            if self.websocket.application_state != WebSocketState.CONNECTED:
                return
            try:
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await asyncio.wait_for(self.websocket.send_text(text), self._send_timeout_s)
            except TimeoutError:
                raise SlowConsumerError from None

    async def announce(self) -> None:
        """``session.created`` (current) or ``transcription_session.created`` (beta)."""
        kind = (
            "session.created"
            if self.dialect is Dialect.CURRENT
            else "transcription_session.created"
        )
        await self.send({"type": kind, "event_id": event_id(), "session": self._view(self.config)})

    async def pump_events(self) -> None:
        """Send the session's events, translated, until its last one."""
        assert self.session is not None
        async for event in self.session:
            for message in self._events.translate(event):
                await self.send(message)

    # ------------------------------------------------------------------ client events

    async def handle(self, message: Any) -> Close | None:
        """Handle one ASGI message; returns how to close when the connection must end."""
        if message["type"] == "websocket.disconnect":
            return _CLOSE_NORMAL, "client disconnected"
        self._client_event_id = None
        try:
            await self._receive(message)
        except OpenAIParamError as exc:
            await self._reply_error(exc.code, exc.message, exc.param)
            return self._count_error()
        except ModelUnavailableError as exc:
            await self.send(error_message("model_unavailable", exc.message, kind="server_error"))
            return _CLOSE_TRY_AGAIN, "model unavailable"
        except TheoError as exc:
            return await self._refused(exc)
        self._errors_in_a_row = 0
        if self.session is not None and self.session.failure is not None:
            return _CLOSE_INTERNAL, "worker unavailable"
        return None

    async def _receive(self, message: Any) -> None:
        if message.get("bytes") is not None:
            raise OpenAIParamError(
                "invalid_value",
                "Send audio as base64 in input_audio_buffer.append events, not as binary.",
                "audio",
            )
        text = message.get("text")
        if text is None:
            return
        event = await self._parse(text)
        if isinstance(event.get("event_id"), str):
            self._client_event_id = event["event_id"]
        await self._dispatch(event)

    async def _refused(self, error: TheoError) -> Close | None:
        """Answer an input the session refused; a fatal refusal ends the connection."""
        rejected = errors.rejection(error)
        param = _PARAMS[self.dialect].get(rejected.param or "", rejected.param)
        await self._reply_error(str(rejected.code), rejected.message, param)
        if errors.is_fatal(rejected):
            return _CLOSE_INTERNAL, "session failed"
        return self._count_error()

    async def _reply_error(self, code: str, message: str, param: str | None) -> None:
        await self.send(
            error_message(code, message, param=param, client_event_id=self._client_event_id)
        )

    def _count_error(self) -> Close | None:
        self._errors_in_a_row += 1
        if self._errors_in_a_row >= _MAX_CONSECUTIVE_ERRORS:
            return _CLOSE_POLICY, "too many invalid messages"
        return None

    async def _parse(self, text: str) -> dict[str, Any]:
        if len(text) > MAX_EVENT_BYTES:
            raise OpenAIParamError(
                "message_too_large",
                f"Client events may hold at most {MAX_EVENT_BYTES} bytes (15 MiB).",
                "audio",
            )
        try:
            if len(text) > _PARSE_IN_THREAD_BYTES:
                event = await asyncio.to_thread(json.loads, text)
            else:
                event = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OpenAIParamError("invalid_json", f"Invalid JSON: {exc.msg}.", "event") from exc
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise OpenAIParamError(
                "invalid_value", "Events are JSON objects with a 'type'.", "type"
            )
        if event["type"] != "input_audio_buffer.append" and len(text) > _MAX_CONTROL_BYTES:
            raise OpenAIParamError(
                "message_too_large", "Events other than appends hold at most 64 KiB.", "event"
            )
        return event

    async def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind in _UPDATE_TYPES:
            await self._update(event, reply=f"{kind}d")
        elif kind == "input_audio_buffer.append":
            await self._append(event.get("audio"))
        elif kind == "input_audio_buffer.commit":
            await self._commit()
        elif kind == "input_audio_buffer.clear":
            if self.session is None:
                await self.send({"type": "input_audio_buffer.cleared", "event_id": event_id()})
            else:
                await self.session.clear()
        else:
            supported = ", ".join(f"'{k}'" for k in _CLIENT_EVENTS)
            raise OpenAIParamError(
                "invalid_value",
                f"Invalid value: '{kind}'. Supported values are: {supported}.",
                "type",
            )

    async def _update(self, event: dict[str, Any], reply: str) -> None:
        update = parse_update(event.get("session"), self.dialect)
        if update.model is not None:
            await self._use_model(update.model)
        changes = update.changes
        if self.session is None:
            updated = self.config.updated(changes)
            check_supported(updated, self.context.manifest)
            self.config = updated
            self._apply_noise(update.noise_type, updated)
            self._events.set_manual(updated.turn_detection == "manual")
            await self.send({"type": reply, "event_id": event_id(), "session": self._view(updated)})
            return
        self._events.update_replies.append(reply)
        try:
            await self.session.configure(changes)
        except TheoError:
            self._events.update_replies.pop()
            raise
        self._apply_noise(update.noise_type, self.session.config)
        self._events.set_manual(self.session.config.turn_detection == "manual")

    def _apply_noise(self, noise_type: str | None, config: SessionConfig) -> None:
        if noise_type is not None:
            self._noise_type = noise_type
        elif config.preprocessing.denoise != "on":
            self._noise_type = None

    async def _use_model(self, requested: str) -> None:
        """Switch to an installed Theo model named by the client; other names (OpenAI's
        models) keep the session's model."""
        target = _stt_model(self._state, requested)
        if requested != target or target == self.context.model_name:
            return
        if self.session is not None:
            raise OpenAIParamError(
                "unsupported_value",
                "The transcription model can change only before the first audio.",
                _model_param(self.dialect),
            )
        context, _ = prepare(self._state, target, None)
        self.context = context

    async def _append(self, audio: Any) -> None:
        if not isinstance(audio, str):
            raise OpenAIParamError("invalid_type", "'audio' must be a base64 string.", "audio")
        try:
            if len(audio) > _PARSE_IN_THREAD_BYTES:
                data = await asyncio.to_thread(base64.b64decode, audio, validate=True)
            else:
                data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise OpenAIParamError(
                "invalid_value", "'audio' is not valid base64.", "audio"
            ) from exc
        if not data:
            return
        session = await self._started()
        audio_format = session.input_format
        audio_format.check(data)
        step = audio_format.bytes_per_sample * int(audio_format.sample_rate * _PUSH_CHUNK_S)
        for start in range(0, len(data), step):
            await session.push(data[start : start + step])

    async def _commit(self) -> None:
        heard = 0 if self.session is None else self.session.uncommitted_ms
        if heard < _MIN_COMMIT_MS:
            raise OpenAIParamError(
                "input_audio_buffer_commit_empty",
                f"Error committing input audio buffer: buffer too small. Expected at least "
                f"{_MIN_COMMIT_MS}ms of audio, but buffer only has {heard}ms of audio "
                "(with server VAD, only speech not yet committed counts).",
                "input_audio_buffer",
            )
        assert self.session is not None
        await self.session.commit()

    async def _started(self) -> RealtimeSession:
        """The session, started at the first audio with the configuration so far.

        Raises:
            ModelUnavailableError: the model has no ready worker.
        """
        if self.session is not None:
            return self.session
        session = RealtimeSession(self.session_id, self.context, self.config)
        await session.start()
        self.session = session
        self._state.metrics.session_opened()
        log.info("session_started", session_id=self.session_id, model=self.context.model_name)
        self.pump = asyncio.create_task(self.pump_events(), name=f"send-{self.session_id}")
        return session


def _model_param(dialect: Dialect) -> str:
    if dialect is Dialect.CURRENT:
        return "session.audio.input.transcription.model"
    return "session.input_audio_transcription.model"


async def serve_openai(
    websocket: WebSocket, state: AppState, dialect: Dialect, first: Any | None
) -> None:
    """Serve one OpenAI Realtime client until it leaves or its session ends."""
    try:
        connection = OpenAIConnection(
            websocket, state, dialect, websocket.query_params.get("model")
        )
    except (ModelNotFoundError, InvalidRequestError) as exc:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, SlowConsumerError):
            await websocket.send_text(json.dumps(error_message("model_not_found", exc.message)))
            await websocket.close(code=_CLOSE_POLICY, reason="no streaming model")
        return
    close: Close = (_CLOSE_INTERNAL, "internal error")
    try:
        await connection.announce()
        close = await _serve(connection, first)
    except SlowConsumerError:
        close = _CLOSE_POLICY, str(CloseReason.SLOW_CONSUMER)
    except asyncio.CancelledError:
        if being_cancelled():
            raise
        log.error("session_failed", session_id=connection.session_id, error="stray cancellation")
    except Exception:
        log.exception("session_failed", session_id=connection.session_id)
    finally:
        await _finish(connection, close)


async def _serve(connection: OpenAIConnection, first: Any | None) -> Close:
    if first is not None:
        result = await connection.handle(first)
        if result is not None:
            return result
    idle_s = MAX_INIT_TIMEOUT_MS / 1000
    while True:
        receive = asyncio.ensure_future(connection.websocket.receive())
        pump = connection.pump
        waits: set[asyncio.Future[Any]] = {receive} if pump is None else {receive, pump}
        done, _ = await asyncio.wait(
            waits,
            timeout=idle_s if pump is None else None,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if not done:  # connected, configured, but never sent audio
            receive.cancel()
            await connection.send(error_message("session_expired", "No audio came for too long."))
            return _CLOSE_NORMAL, str(CloseReason.INIT_TIMEOUT)
        if pump is not None and pump.done():
            receive.cancel()
            return _pump_close(connection, pump)
        result = await connection.handle(receive.result())
        if result is not None:
            return result


def _pump_close(connection: OpenAIConnection, pump: asyncio.Task[None]) -> Close:
    session = connection.session
    assert session is not None
    if session.failure is not None:
        return _CLOSE_INTERNAL, "worker unavailable"
    if not pump.cancelled() and isinstance(pump.exception(), SlowConsumerError):
        log.warning("session_slow_consumer", session_id=session.session_id)
        return _CLOSE_POLICY, str(CloseReason.SLOW_CONSUMER)
    if pump.cancelled() or pump.exception() is not None:
        return _CLOSE_INTERNAL, "internal error"
    return _CLOSE_NORMAL, str(session.close_reason or "session ended")


async def _finish(connection: OpenAIConnection, close: Close) -> None:
    session, websocket, state = connection.session, connection.websocket, connection._state
    if session is not None:
        await session.abort()
        if connection.pump is not None:
            await finish_sending(connection.pump)
        state.metrics.session_closed()
        state.metrics.session_duration(time.monotonic() - connection.started)
    log.info(
        "session_ended",
        session_id=connection.session_id,
        protocol="openai",
        reason=close[1],
        seconds=round(time.monotonic() - connection.started, 3),
    )
    if (
        websocket.application_state == WebSocketState.CONNECTED
        and websocket.client_state == WebSocketState.CONNECTED
    ):
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, TimeoutError):
            await asyncio.wait_for(websocket.close(code=close[0], reason=close[1]), 2.0)
