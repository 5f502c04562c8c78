"""Commands a ``WS /v1/calls/events`` subscriber sends to speak into a call.

``tts.speak`` (``call_id`` plus the fields of the realtime command) and ``tts.cancel``
(``call_id``, optional ``request_id``). What a call then says is published on the bus
like its other events (``tts.speaking_start`` / ``tts.speaking_end`` with ``call_id``);
a refused command is answered to its sender alone with an ``error`` event.
"""

from __future__ import annotations

from theo.errors import InvalidRequestError, TheoError
from theo.server.calls.bus import Message
from theo.server.calls.registry import CallRegistry
from theo.server.transports.websocket_codec import parse_command, payload
from theo.session import errors
from theo.session.errors import ClientError

_COMMANDS = ("tts.cancel", "tts.speak")


async def handle_command(registry: CallRegistry, text: str) -> Message | None:
    """Run one subscriber command; returns the error to send back, or None."""
    call_id: object = None
    try:
        message = parse_command(text)
        call_id = message.get("call_id")
        kind = message["type"]
        if kind not in _COMMANDS:
            known = ", ".join(_COMMANDS)
            raise ClientError("unknown_command", f"Unknown command '{kind}'. Known: {known}.")
        if not isinstance(call_id, str):
            raise InvalidRequestError("'call_id' (a string) names the call.", "call_id")
        call = registry.get(call_id)
        if call is None or call.ending:
            raise InvalidRequestError(f"No live call '{call_id}'.", "call_id")
        fields = {k: v for k, v in message.items() if k not in ("type", "event_id", "call_id")}
        if kind == "tts.speak":
            await call.speak(fields)
        else:
            request_id = fields.pop("request_id", None)
            if request_id is not None and not isinstance(request_id, str):
                raise InvalidRequestError("'request_id' must be a string.", "request_id")
            call.session.cancel_speech(request_id)
    except TheoError as exc:
        body = payload(errors.rejection(exc))
        assert body is not None
        if isinstance(call_id, str):
            body["call_id"] = call_id
        return body
    return None
