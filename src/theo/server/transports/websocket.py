"""WS /v1/realtime: the realtime transcription protocol as a transport adapter.

Binary messages from the client are audio frames pushed into the session; text messages
are JSON commands dispatched by a decorator-registered router. One task sends the
session's events as they come, in order (spoken audio as binary messages); the receive
loop hands refused input to the session (:meth:`RealtimeSession.report`), so its error
event is ordered with the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from theo.errors import InvalidRequestError, ModelNotFoundError, ModelUnavailableError, TheoError
from theo.logging import get_logger
from theo.server.security import accepted_subprotocol
from theo.server.state import AppState
from theo.server.transports.admission import new_session_id, prepare, take_slot
from theo.server.transports.lifecycle import being_cancelled, finish_sending
from theo.server.transports.openai_realtime import (
    dialect_of,
    dialect_of_first_message,
    serve_openai,
)
from theo.server.transports.websocket_codec import (
    Message,
    encode,
    encode_refusal,
    parse_command,
)
from theo.session import errors
from theo.session.core import RealtimeSession
from theo.session.errors import ClientError, SessionClosedError, SessionLimitError
from theo.session.events import CloseReason, OutputAudio
from theo.session.slots import Slot

router = APIRouter()
log = get_logger("server.realtime")

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013
_MAX_FRAME_BYTES = 96_000 * 2  # 2 s of 48 kHz PCM16 in one message is abuse
_MAX_CONSECUTIVE_ERRORS = 20
_SNIFF_WINDOW_S = 0.1
_INTERNAL_MESSAGE = "The session failed on an internal error; it cannot continue."

Command = Callable[[RealtimeSession, Message], Awaitable[None]]
_COMMANDS: dict[str, Command] = {}

Close = tuple[int, str]
"""A WebSocket close code and reason."""

_INTERNAL_FAILURE: Close = (CLOSE_INTERNAL, "internal error")


def command(name: str) -> Callable[[Command], Command]:
    """Register a handler for a client command type."""

    def register(handler: Command) -> Command:
        _COMMANDS[name] = handler
        return handler

    return register


@command("session.configure")
async def _configure(session: RealtimeSession, message: Message) -> None:
    await session.configure({k: v for k, v in message.items() if k not in ("type", "event_id")})


@command("input_audio_buffer.commit")
async def _commit(session: RealtimeSession, message: Message) -> None:
    await session.commit()


@command("session.close")
async def _close(session: RealtimeSession, message: Message) -> None:
    await session.close(CloseReason.CLIENT_CLOSE)


@command("session.cancel")
async def _cancel(session: RealtimeSession, message: Message) -> None:
    await session.cancel()


@command("tts.speak")
async def _speak(session: RealtimeSession, message: Message) -> None:
    await session.speak({k: v for k, v in message.items() if k not in ("type", "event_id")})


@command("tts.cancel")
async def _cancel_speech(session: RealtimeSession, message: Message) -> None:
    request_id = message.get("request_id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidRequestError("'request_id' must be a string.", param="request_id")
    session.cancel_speech(request_id)


class SlowConsumerError(Exception):
    """The client stopped reading: one message could not be sent within the timeout."""


class ProtocolAbuseError(Exception):
    """The client keeps breaking the protocol; the connection is closed with 1008."""


class RealtimeConnection:
    """One WebSocket client and its session."""

    def __init__(
        self, websocket: WebSocket, session: RealtimeSession, send_timeout_s: float
    ) -> None:
        self.websocket = websocket
        self.session = session
        self._send_timeout_s = send_timeout_s
        self._errors_in_a_row = 0

    async def send_events(self) -> None:
        """Send the session's events, in order, until its last one.

        Spoken audio goes as binary messages, everything else as JSON text.

        Raises:
            SlowConsumerError: a message waited longer than the send timeout (the client
                does not read; what is queued for it must not grow without end).
        """
        async for event in self.session:
            if self.websocket.application_state != WebSocketState.CONNECTED:
                continue
            if isinstance(event, OutputAudio):
                await self._send(self.websocket.send_bytes(event.audio))
            elif (text := encode(event)) is not None:
                await self._send(self.websocket.send_text(text))

    async def _send(self, sending: Awaitable[None]) -> None:
        try:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await asyncio.wait_for(sending, self._send_timeout_s)
        except TimeoutError:
            raise SlowConsumerError from None

    async def handle(self, message: Any) -> Close | None:
        """Handle one ASGI message; returns how to close when the session must end."""
        if message["type"] == "websocket.disconnect":
            return CLOSE_NORMAL, "client disconnected"
        try:
            if message.get("bytes") is not None:
                await self._on_audio(message["bytes"])
                self._errors_in_a_row = 0
            elif message.get("text") is not None:
                await self._on_text(message["text"])
                self._errors_in_a_row = 0
        except TheoError as exc:
            event = self.session.report(exc)
            if errors.is_fatal(event):
                return CLOSE_INTERNAL, "worker unavailable"
            try:
                self._count_error()
            except ProtocolAbuseError:
                return CLOSE_POLICY, "too many invalid messages"
        if self.session.failure is not None:
            return CLOSE_INTERNAL, "worker unavailable"
        return None

    def _count_error(self) -> None:
        """One more refused message in a row; too many is protocol abuse."""
        self._errors_in_a_row += 1
        if self._errors_in_a_row >= _MAX_CONSECUTIVE_ERRORS:
            raise ProtocolAbuseError

    async def _on_audio(self, data: bytes) -> None:
        if not self.session.accepting:
            raise SessionClosedError
        if len(data) > _MAX_FRAME_BYTES:
            raise ClientError(
                "frame_too_large",
                f"Audio frames may hold at most {_MAX_FRAME_BYTES} bytes; send 20-100 ms frames.",
            )
        await self.session.push(data)

    async def _on_text(self, text: str) -> None:
        message = parse_command(text)
        if not self.session.accepting:
            raise SessionClosedError
        kind = message["type"]
        handler = _COMMANDS.get(kind)
        if handler is None:
            known = ", ".join(sorted(_COMMANDS))
            raise ClientError("unknown_command", f"Unknown command '{kind}'. Known: {known}.")
        await handler(self.session, message)


async def _refuse(websocket: WebSocket, error: TheoError, close_code: int) -> None:
    """Refuse the connection before a session starts: one error event, then close."""
    event = errors.refusal(error)
    # A client that already left cannot be told why.
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.send_text(encode_refusal(event))
        await websocket.close(code=close_code, reason=event.message[:120])


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    """Realtime transcription session (see README, "Realtime protocol")."""
    state: AppState = websocket.app.state.theo
    await websocket.accept(subprotocol=accepted_subprotocol(websocket.scope))
    limit = state.settings.session.max_sessions
    try:
        slot = take_slot(websocket.app.state, limit)
    except SessionLimitError as exc:
        log.warning("session_refused", reason="too_many_sessions", limit=limit)
        await _refuse(websocket, exc, CLOSE_TRY_AGAIN)
        return
    try:
        dialect = dialect_of(websocket)
        first = None
        if dialect is None:
            first = await _first_message(websocket)
            if first is not None and first["type"] == "websocket.disconnect":
                return
            dialect = None if first is None else dialect_of_first_message(first)
        if dialect is not None:
            await serve_openai(websocket, state, dialect, first)
        else:
            await _run(websocket, state, slot, first)
    finally:
        slot.release()  # whatever ended the session, even an exception or a cancellation


async def _first_message(websocket: WebSocket) -> Any | None:
    """The client's first message if it comes within the sniffing window, else None.

    An OpenAI client without ``intent`` or ``OpenAI-Beta`` is known by its first message,
    a session update, sent at once; Theo's clients wait for ``session.created`` or send
    audio, so they lose at most this window once.
    """
    try:
        return await asyncio.wait_for(websocket.receive(), _SNIFF_WINDOW_S)
    except TimeoutError:
        return None


async def _run(websocket: WebSocket, state: AppState, slot: Slot, first: Any | None) -> None:
    """Validate the connect parameters, then serve the session until it ends.

    ``first`` is a message already received (while the protocol was being told), handled
    before the others.
    """
    params = websocket.query_params
    try:
        context, config = prepare(state, params.get("model") or "", params.get("language"))
    except (ModelNotFoundError, InvalidRequestError) as exc:
        await _refuse(websocket, exc, CLOSE_POLICY)
        return
    session_id = new_session_id()
    session = RealtimeSession(session_id, context, config)
    try:
        await session.start()
    except ModelUnavailableError as exc:
        await _refuse(websocket, exc, CLOSE_TRY_AGAIN)
        return
    state.metrics.session_opened()
    started = time.monotonic()
    log.info("session_started", session_id=session_id, model=context.model_name)
    connection = RealtimeConnection(websocket, session, state.settings.session.send_timeout_s)
    sender = asyncio.create_task(connection.send_events(), name=f"send-{session_id}")
    # Only _serve's answer closes normally: anything that escapes it is a failure.
    close_code, reason = _INTERNAL_FAILURE
    try:
        early = None if first is None else await connection.handle(first)
        close_code, reason = early or await _serve(connection, sender)
    except asyncio.CancelledError:
        if being_cancelled():
            raise
        # A cancellation nobody asked for (one leaked from a call under the session).
        log.error("session_failed", session_id=session_id, error="stray cancellation")
        session.report(TheoError(_INTERNAL_MESSAGE))
    except Exception:
        log.exception("session_failed", session_id=session_id)
        session.report(TheoError(_INTERNAL_MESSAGE))
    finally:
        await session.abort()
        # The events emitted before the end still go out (the stream has ended now).
        await finish_sending(sender)
        # Before the close frame: a client told the session is over may open another.
        slot.release()
        state.metrics.session_closed()
        state.metrics.session_duration(time.monotonic() - started)
        log.info(
            "session_ended",
            session_id=session_id,
            reason=str(session.close_reason or reason),
            seconds=round(time.monotonic() - started, 3),
        )
        # A client that already left cannot be sent a close frame, and one that does
        # not read may never take it.
        if (
            websocket.application_state == WebSocketState.CONNECTED
            and websocket.client_state == WebSocketState.CONNECTED
        ):
            with contextlib.suppress(RuntimeError, WebSocketDisconnect, TimeoutError):
                await asyncio.wait_for(websocket.close(code=close_code, reason=reason), 2.0)


async def _serve(connection: RealtimeConnection, sender: asyncio.Task[None]) -> Close:
    """Handle messages until the client leaves or the session has sent its last event."""
    session = connection.session
    while True:
        receive = asyncio.ensure_future(connection.websocket.receive())
        await asyncio.wait({receive, sender}, return_when=asyncio.FIRST_COMPLETED)
        if sender.done():
            receive.cancel()
            if session.failure is not None:
                return CLOSE_INTERNAL, "worker unavailable"
            if not sender.cancelled() and isinstance(sender.exception(), SlowConsumerError):
                log.warning("session_slow_consumer", session_id=session.session_id)
                return CLOSE_POLICY, str(CloseReason.SLOW_CONSUMER)
            if sender.cancelled() or sender.exception() is not None:
                return _INTERNAL_FAILURE  # the client was not sent every event
            if session.close_reason is None:
                # The events ended without a reason: never a normal close.
                log.error("session_ended_without_reason", session_id=session.session_id)
                return _INTERNAL_FAILURE
            return CLOSE_NORMAL, str(session.close_reason)
        result = await connection.handle(receive.result())
        if result is not None:
            return result
