"""The JSON of the WebSocket protocol: session events out, client commands in.

The only place that knows the protocol's message shapes (see README, "Realtime
protocol"). Key order is part of the contract: clients and tests compare messages as
text.
"""

from __future__ import annotations

import json
from typing import Any, assert_never

from theo.session.errors import ClientError
from theo.session.events import (
    ErrorEvent,
    FramesDropped,
    InputCleared,
    OutputAudio,
    RateLimit,
    SegmentEnded,
    SessionClosed,
    SessionCreated,
    SessionEvent,
    SessionHold,
    SessionLagging,
    SessionUpdated,
    SpeakingEnded,
    SpeakingStarted,
    SpeechEnd,
    SpeechStart,
    TranscriptCorrection,
    TranscriptFinal,
    TranscriptPartial,
)

MAX_TEXT_BYTES = 64 * 1024

Message = dict[str, Any]
"""One JSON message, as sent or received."""


def encode(event: SessionEvent) -> str | None:
    """The text message for ``event``; None for events this protocol does not carry."""
    body = payload(event)
    return None if body is None else json.dumps(body, ensure_ascii=False)


def encode_refusal(event: ErrorEvent) -> str:
    """The text message refusing a connection before its session starts.

    ASCII-escaped, unlike session events: refusals have always been sent that way.
    """
    return json.dumps(_error(event))


# One case per event type, checked exhaustive by mypy (assert_never).
def payload(event: SessionEvent) -> Message | None:  # noqa: PLR0911, PLR0912
    """The JSON object for ``event``; None for events this protocol does not carry."""
    match event:
        case SessionCreated():
            return {
                "type": "session.created",
                "session_id": event.session_id,
                "model": event.model,
                "config": event.config.model_dump(),
            }
        case SessionUpdated():
            return {"type": "session.updated", "config": event.config.model_dump()}
        case SpeechStart():
            return _segment_mark("vad.speech_start", event.segment_id, event.timestamp_ms)
        case SpeechEnd():
            return _segment_mark("vad.speech_end", event.segment_id, event.timestamp_ms)
        case TranscriptPartial():
            partial: Message = {
                "type": "transcript.partial",
                "segment_id": event.segment_id,
                "text": event.text,
                "timestamp_ms": event.timestamp_ms,
            }
            if event.unstable_text is not None:
                partial["unstable_text"] = event.unstable_text
            return partial
        case TranscriptFinal():
            return _final(event)
        case TranscriptCorrection():
            return {
                "type": "transcript.correction",
                "segment_ids": list(event.segment_ids),
                "text": event.text,
                "language": event.language,
            }
        case SessionHold():
            return {
                "type": "session.hold",
                "session_id": event.session_id,
                "timestamp_ms": event.timestamp_ms,
                "hold_timeout_ms": event.hold_timeout_ms,
            }
        case RateLimit():
            return {
                "type": "session.rate_limit",
                "delay_ms": event.delay_ms,
                "message": event.message,
            }
        case SessionLagging():
            return {
                "type": "session.lagging",
                "segment_id": event.segment_id,
                "lag_ms": event.lag_ms,
                "message": event.message,
            }
        case FramesDropped():
            return {
                "type": "session.frames_dropped",
                "dropped_ms": event.dropped_ms,
                "total_dropped_ms": event.total_dropped_ms,
                "message": event.message,
            }
        case ErrorEvent():
            return _error(event)
        case SessionClosed():
            return {
                "type": "session.closed",
                "session_id": event.session_id,
                "reason": str(event.reason),
            }
        case SpeakingStarted():
            return {
                "type": "tts.speaking_start",
                "request_id": event.request_id,
                "model": event.model,
                "voice": event.voice,
                "sample_rate": event.sample_rate,
                "format": event.format,
            }
        case OutputAudio():
            return None  # sent as a binary message, not JSON
        case SegmentEnded() | InputCleared():
            return None  # this protocol ends a segment with its final and vad.speech_end
        case SpeakingEnded():
            return {
                "type": "tts.speaking_end",
                "request_id": event.request_id,
                "reason": str(event.reason),
                "duration_ms": event.duration_ms,
            }
        case _:
            assert_never(event)


def parse_command(text: str) -> Message:
    """A client's text message as a command: a JSON object with a string ``type``.

    Raises:
        ClientError: too large (``message_too_large``), not JSON (``invalid_json``), or
            not a command (``invalid_command``).
    """
    if len(text) > MAX_TEXT_BYTES:
        raise ClientError("message_too_large", "Command too large.")
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClientError("invalid_json", f"Invalid JSON: {exc.msg}.") from exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ClientError("invalid_command", "Commands are JSON objects with a 'type'.")
    return message


def _segment_mark(kind: str, segment_id: int, timestamp_ms: int) -> Message:
    return {"type": kind, "segment_id": segment_id, "timestamp_ms": timestamp_ms}


def _final(event: TranscriptFinal) -> Message:
    return {
        "type": "transcript.final",
        "segment_id": event.segment_id,
        "text": event.text,
        "start_ms": event.start_ms,
        "end_ms": event.end_ms,
        "language": event.language,
        "confidence": event.confidence,
        "words": [
            {
                "word": w.word,
                "start_ms": w.start_ms,
                "end_ms": w.end_ms,
                "probability": w.probability,
            }
            for w in event.words
        ],
    }


def _error(event: ErrorEvent) -> Message:
    body: Message = {
        "type": "error",
        "code": str(event.code),
        "message": event.message,
        "recoverable": event.recoverable,
    }
    if event.param is not None:
        body["param"] = event.param
    if event.resume_segment_id is not None:
        body["resume_segment_id"] = event.resume_segment_id
    if event.request_id is not None:
        body["request_id"] = event.request_id
    return body
