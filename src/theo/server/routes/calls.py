"""GET /v1/calls (the live phone calls) and WS /v1/calls/events (what callers say, and
``tts.speak`` / ``tts.cancel`` to speak into a call)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, Request, WebSocket
from starlette.websockets import WebSocketDisconnect

from theo.server.calls.bus import Message
from theo.server.calls.commands import handle_command
from theo.server.calls.service import Telephony
from theo.server.security import accepted_subprotocol

router = APIRouter()

CLOSE_NORMAL = 1000
CLOSE_TRY_AGAIN = 1013


def _telephony(app_state: Any) -> Telephony | None:
    telephony: Telephony | None = getattr(app_state, "telephony", None)
    return telephony


@router.get("/v1/calls")
async def list_calls(request: Request) -> dict[str, Any]:
    """The calls being transcribed now, oldest first."""
    telephony = _telephony(request.app.state)
    calls = telephony.registry.describe() if telephony is not None else []
    return {"object": "list", "data": calls}


@router.websocket("/v1/calls/events")
async def call_events(websocket: WebSocket) -> None:
    """Every call's events from now on (``?call_id=`` for one call); see README, "Telephony"."""
    await websocket.accept(subprotocol=accepted_subprotocol(websocket.scope))
    telephony = _telephony(websocket.app.state)
    if telephony is None:
        await websocket.close(code=CLOSE_NORMAL, reason="telephony is off")
        return
    bus = telephony.registry.bus
    subscription = bus.subscribe(websocket.query_params.get("call_id") or None)
    sending = asyncio.Lock()  # events and command errors share the socket
    leaving = asyncio.ensure_future(_read_commands(websocket, telephony, sending))
    try:
        while True:
            batch = asyncio.ensure_future(subscription.next_batch())
            await asyncio.wait({batch, leaving}, return_when=asyncio.FIRST_COMPLETED)
            if leaving.done():
                batch.cancel()
                return
            if subscription.overflowed:
                await _drop_slow(websocket)
                return
            async with sending:
                for message in batch.result():
                    await websocket.send_text(_encode(message))
    except (WebSocketDisconnect, RuntimeError):
        return  # the subscriber left while being sent to
    finally:
        bus.unsubscribe(subscription)
        leaving.cancel()


def _encode(message: Message) -> str:
    return json.dumps(message, ensure_ascii=False)


async def _read_commands(websocket: WebSocket, telephony: Telephony, sending: asyncio.Lock) -> None:
    """Run the subscriber's commands (``tts.speak`` / ``tts.cancel``) until it leaves."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while (message := await websocket.receive())["type"] != "websocket.disconnect":
            text = message.get("text")
            if text is None:
                text = "" if message.get("bytes") is None else "<binary>"
            error = await handle_command(telephony.registry, text)
            if error is not None:
                async with sending:
                    await websocket.send_text(_encode(error))


async def _drop_slow(websocket: WebSocket) -> None:
    """Tell a subscriber that fell too far behind why it is dropped, then close."""
    error = {
        "type": "error",
        "code": "subscriber_overflow",
        "message": "You fell too far behind the calls' events and were dropped; reconnect.",
        "recoverable": False,
    }
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_text(_encode(error))
        await websocket.close(code=CLOSE_TRY_AGAIN, reason="subscriber too slow")
