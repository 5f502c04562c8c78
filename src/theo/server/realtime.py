"""WS /v1/realtime: the realtime transcription protocol at the edge.

Binary messages are PCM16 mono frames; text messages are JSON commands dispatched by a
decorator-registered router. Domain errors become ``error`` events here and only here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from theo.errors import InvalidRequestError, ModelNotFoundError, ModelUnavailableError, TheoError
from theo.logging import get_logger
from theo.server.security import accepted_subprotocol
from theo.server.state import AppState
from theo.session.config import SessionConfig, check_supported
from theo.session.context import SessionContext
from theo.session.streaming import StreamingSession
from theo.types import ModelType

router = APIRouter()
log = get_logger("server.realtime")

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013
_MAX_FRAME_BYTES = 96_000 * 2  # 2 s of 48 kHz PCM16 in one message is abuse
_MAX_TEXT_BYTES = 64 * 1024
_MAX_CONSECUTIVE_ERRORS = 20

Command = Callable[["RealtimeConnection", dict[str, Any]], Awaitable[None]]
_COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    """Register a handler for a client command type."""

    def register(handler: Command) -> Command:
        _COMMANDS[name] = handler
        return handler

    return register


class ProtocolAbuseError(Exception):
    """The client keeps breaking the protocol; the connection is closed with 1008."""


class RealtimeConnection:
    """One WebSocket client and its session."""

    def __init__(self, websocket: WebSocket, session: StreamingSession) -> None:
        self.websocket = websocket
        self.session = session
        self._send_lock = asyncio.Lock()
        self._errors_in_a_row = 0

    @property
    def closing(self) -> bool:
        """Whether the session stopped taking audio and commands (CLOSING or CLOSED)."""
        return not self.session.accepting

    async def send(self, event: dict[str, Any]) -> None:
        """Send one JSON event; concurrent senders are serialized."""
        async with self._send_lock:
            if self.websocket.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await self.websocket.send_text(json.dumps(event, ensure_ascii=False))

    async def error(self, code: str, message: str, *, recoverable: bool, **extra: Any) -> None:
        """Send an ``error`` event; too many in a row is protocol abuse."""
        await self.send(
            {"type": "error", "code": code, "message": message, "recoverable": recoverable, **extra}
        )
        self._errors_in_a_row += 1
        if self._errors_in_a_row >= _MAX_CONSECUTIVE_ERRORS:
            raise ProtocolAbuseError

    def ok(self) -> None:
        """A message was handled without error."""
        self._errors_in_a_row = 0

    async def on_audio(self, data: bytes) -> None:
        """Handle a binary frame."""
        if self.closing:
            await self.error("session_closed", "The session is closed.", recoverable=False)
            return
        if len(data) > _MAX_FRAME_BYTES:
            await self.error(
                "frame_too_large",
                f"Audio frames may hold at most {_MAX_FRAME_BYTES} bytes; send 20-100 ms frames.",
                recoverable=True,
            )
            return
        await self.session.feed(data)
        self.ok()

    async def on_text(self, text: str) -> None:
        """Handle a JSON command."""
        if len(text) > _MAX_TEXT_BYTES:
            await self.error("message_too_large", "Command too large.", recoverable=True)
            return
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            await self.error("invalid_json", f"Invalid JSON: {exc.msg}.", recoverable=True)
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.error(
                "invalid_command", "Commands are JSON objects with a 'type'.", recoverable=True
            )
            return
        kind = message["type"]
        if self.closing:
            await self.error("session_closed", "The session is closed.", recoverable=False)
            return
        handler = _COMMANDS.get(kind)
        if handler is None:
            known = ", ".join(sorted(_COMMANDS))
            await self.error(
                "unknown_command", f"Unknown command '{kind}'. Known: {known}.", recoverable=True
            )
            return
        await handler(self, message)
        self.ok()


@command("session.configure")
async def _configure(connection: RealtimeConnection, message: dict[str, Any]) -> None:
    changes = {k: v for k, v in message.items() if k not in ("type", "event_id")}
    await connection.session.configure(changes)
    await connection.send(
        {"type": "session.updated", "config": connection.session.config.model_dump()}
    )


@command("input_audio_buffer.commit")
async def _commit(connection: RealtimeConnection, message: dict[str, Any]) -> None:
    await connection.session.commit()


@command("session.close")
async def _close(connection: RealtimeConnection, message: dict[str, Any]) -> None:
    await connection.session.close("client_close")


@command("session.cancel")
async def _cancel(connection: RealtimeConnection, message: dict[str, Any]) -> None:
    await connection.session.cancel()


async def _reject(
    websocket: WebSocket, code: str, message: str, close_code: int, param: str | None = None
) -> None:
    event: dict[str, Any] = {
        "type": "error",
        "code": code,
        "message": message,
        "recoverable": False,
    }
    if param is not None:
        event["param"] = param
    # A client that already left cannot be told why.
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.send_text(json.dumps(event))
        await websocket.close(code=close_code, reason=message[:120])


class _Slot:
    """One open session's place in :class:`SessionSlots`; giving it back twice is harmless."""

    def __init__(self, slots: SessionSlots) -> None:
        self._slots: SessionSlots | None = slots

    def release(self) -> None:
        """Give the place back (the first call only)."""
        if self._slots is not None:
            self._slots.open -= 1
            self._slots = None


class SessionSlots:
    """The realtime sessions open on one server, held to ``THEO_SESSION__MAX_SESSIONS``.

    Each session holds a WebSocket, a worker stream and a pre-allocated ring buffer, so
    an unlimited number would let clients exhaust memory and the workers' time. Taking
    and counting happen without an ``await`` in between, so the event loop makes them
    atomic.
    """

    def __init__(self) -> None:
        self.open = 0

    def take(self, limit: int) -> _Slot | None:
        """A place for one more session, or None when ``limit`` are open."""
        if self.open >= limit:
            return None
        self.open += 1
        return _Slot(self)


def _slots(websocket: WebSocket) -> SessionSlots:
    """The app's session counter, created with the first session."""
    app_state = websocket.app.state
    slots: SessionSlots | None = getattr(app_state, "realtime_slots", None)
    if slots is None:
        slots = SessionSlots()
        app_state.realtime_slots = slots
    return slots


def _session_context(state: AppState, model_name: str) -> SessionContext:
    model = state.model(model_name)
    manifest = model.manifest
    if manifest.type != ModelType.STT or not manifest.capabilities.streaming:
        raise InvalidRequestError(
            f"Model '{model_name}' cannot serve realtime transcription.", param="model"
        )
    return SessionContext(
        model_name=model_name,
        manifest=manifest,
        scheduler=state.scheduler,
        itn_engine=state.itn_engines.get(manifest.postprocessing.itn_backend),
        metrics=state.metrics,
        limits=state.settings.session,
    )


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    """Realtime transcription session (see README, "Realtime protocol")."""
    state: AppState = websocket.app.state.theo
    await websocket.accept(subprotocol=accepted_subprotocol(websocket.scope))
    limit = state.settings.session.max_sessions
    slot = _slots(websocket).take(limit)
    if slot is None:
        log.warning("session_refused", reason="too_many_sessions", limit=limit)
        message = (
            f"The server already serves {limit} realtime sessions, its limit "
            "(THEO_SESSION__MAX_SESSIONS); try again later."
        )
        await _reject(websocket, "too_many_sessions", message, CLOSE_TRY_AGAIN)
        return
    try:
        await _run(websocket, state, slot)
    finally:
        slot.release()  # whatever ended the session, even an exception or a cancellation


async def _run(websocket: WebSocket, state: AppState, slot: _Slot) -> None:
    """Validate the connect parameters, then serve the session until it ends."""
    params = websocket.query_params
    try:
        context = _session_context(state, params.get("model") or "")
        config = SessionConfig().updated({"language": params.get("language")})
        # Like batch answering 400: a language the model cannot do fails now, not at the
        # first speech.
        check_supported(config, context.manifest)
    except ModelNotFoundError as exc:
        await _reject(websocket, "model_not_found", exc.message, CLOSE_POLICY)
        return
    except InvalidRequestError as exc:
        await _reject(websocket, "invalid_value", exc.message, CLOSE_POLICY, exc.param)
        return
    session_id = f"sess_{uuid.uuid4().hex[:16]}"
    holder: dict[str, RealtimeConnection] = {}

    async def send(event: dict[str, Any]) -> None:
        await holder["connection"].send(event)

    session = StreamingSession(session_id, context, config, send)
    connection = RealtimeConnection(websocket, session)
    holder["connection"] = connection
    try:
        await session.start()
    except ModelUnavailableError as exc:
        await _reject(websocket, "model_unavailable", exc.message, CLOSE_TRY_AGAIN)
        return
    state.metrics.session_opened()
    started = time.monotonic()
    log.info("session_started", session_id=session_id, model=context.model_name)
    close_code, reason = CLOSE_NORMAL, "session closed"
    try:
        close_code, reason = await _serve(connection)
    finally:
        await session.abort()
        # Before the close frame: a client told the session is over may open another.
        slot.release()
        state.metrics.session_closed()
        state.metrics.session_duration(time.monotonic() - started)
        log.info(
            "session_ended",
            session_id=session_id,
            reason=session.close_reason or reason,
            seconds=round(time.monotonic() - started, 3),
        )
        # A client that already left cannot be sent a close frame.
        if (
            websocket.application_state == WebSocketState.CONNECTED
            and websocket.client_state == WebSocketState.CONNECTED
        ):
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close(code=close_code, reason=reason)


async def _serve(connection: RealtimeConnection) -> tuple[int, str]:
    """Handle messages until the client leaves or the session reaches CLOSED."""
    session = connection.session
    ended = asyncio.ensure_future(session.wait_closed())
    try:
        while True:
            receive = asyncio.ensure_future(connection.websocket.receive())
            await asyncio.wait({receive, ended}, return_when=asyncio.FIRST_COMPLETED)
            if ended.done():
                receive.cancel()
                if session.failure is not None:
                    return CLOSE_INTERNAL, "worker unavailable"
                return CLOSE_NORMAL, session.close_reason or "session closed"
            result = await _handle(connection, receive.result())
            if result is not None:
                return result
    finally:
        ended.cancel()


async def _handle(connection: RealtimeConnection, message: Any) -> tuple[int, str] | None:
    """Handle one ASGI message; returns a close code and reason when the session must end."""
    if message["type"] == "websocket.disconnect":
        return CLOSE_NORMAL, "client disconnected"
    try:
        if message.get("bytes") is not None:
            await connection.on_audio(message["bytes"])
        elif message.get("text") is not None:
            await connection.on_text(message["text"])
    except ProtocolAbuseError:
        return CLOSE_POLICY, "too many invalid messages"
    except InvalidRequestError as exc:
        try:
            await connection.error("invalid_value", exc.message, recoverable=True, param=exc.param)
        except ProtocolAbuseError:
            return CLOSE_POLICY, "too many invalid messages"
    except TheoError as exc:
        await connection.error("worker_unavailable", exc.message, recoverable=False)
        return CLOSE_INTERNAL, "worker unavailable"
    if connection.session.failure is not None:
        return CLOSE_INTERNAL, "worker unavailable"
    return None
