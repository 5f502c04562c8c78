"""Theo session events -> OpenAI Realtime transcription server events.

One :class:`OpenAIEvents` per connection keeps the turn state OpenAI's events need: each
Theo segment is one conversation item (its id announced at ``speech_started``), items are
chained by ``previous_item_id``, and the append-only partials become ``delta`` events
holding only the newly agreed text. Per turn the order is ``speech_started``, deltas
while the user speaks, ``speech_stopped``, ``committed``, the item event, the last delta,
``completed`` and (current form) ``conversation.item.done``. With manual turns the item
exists only once committed, so its deltas wait for the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from theo.server.transports.openai_session import Dialect
from theo.session.config import SessionConfig
from theo.session.events import (
    CloseReason,
    ErrorEvent,
    FramesDropped,
    InputCleared,
    SegmentEnded,
    SessionClosed,
    SessionEvent,
    SessionUpdated,
    SpeechStart,
    TranscriptFinal,
    TranscriptPartial,
)

Message = dict[str, Any]

_TRANSCRIPTION = "conversation.item.input_audio_transcription"
# Recoverable worker trouble: the session replays the audio, nothing is lost. OpenAI
# clients treat any error event as fatal, so it is not one.
_SILENT_ERRORS = frozenset({"worker_crashed"})


def event_id() -> str:
    """A fresh server event id."""
    return f"event_{uuid.uuid4().hex[:20]}"


def error_message(
    code: str,
    message: str,
    *,
    param: str | None = None,
    client_event_id: str | None = None,
    kind: str = "invalid_request_error",
) -> Message:
    """An OpenAI ``error`` event."""
    return {
        "type": "error",
        "event_id": event_id(),
        "error": {
            "type": kind,
            "code": code,
            "message": message,
            "param": param,
            "event_id": client_event_id,
        },
    }


@dataclass
class _Item:
    id: str
    announced: bool
    """Whether the client knows the item (speech_started or committed was sent)."""
    sent: str = ""
    """The text of the deltas sent so far."""
    latest: str = ""
    """The latest partial, sent or not."""
    audio_s: float = 0.0
    committed: bool = False
    previous: str | None = None
    """The item committed before this one."""


class OpenAIEvents:
    """Translates one session's events into OpenAI's, in order.

    Args:
        dialect: the current or the beta form.
        session_view: the session object for ``session.updated`` of a configuration.
    """

    def __init__(self, dialect: Dialect, session_view: Callable[[SessionConfig], Message]) -> None:
        self._dialect = dialect
        self._view = session_view
        self._items: dict[int, _Item] = {}
        self._previous: str | None = None
        self.update_replies: list[str] = []
        """The event type answering each pending ``configure``, oldest first."""
        self._manual = False

    def set_manual(self, manual: bool) -> None:
        """Whether turns are committed by the client (items appear only when committed)."""
        self._manual = manual

    def translate(self, event: SessionEvent) -> list[Message]:  # noqa: PLR0911
        """The OpenAI events for one session event (none for most of Theo's own)."""
        match event:
            case SessionUpdated():
                kind = self.update_replies.pop(0) if self.update_replies else "session.updated"
                return [{"type": kind, "event_id": event_id(), "session": self._view(event.config)}]
            case SpeechStart():
                return self._started(event)
            case TranscriptPartial():
                return self._partial(event)
            case SegmentEnded():
                return self._ended(event)
            case TranscriptFinal():
                return self._final(event)
            case InputCleared():
                if event.segment_id is not None:
                    self._items.pop(event.segment_id, None)
                return [{"type": "input_audio_buffer.cleared", "event_id": event_id()}]
            case ErrorEvent():
                return self._error(event)
            case FramesDropped():
                return [error_message("audio_dropped", event.message)]
            case SessionClosed():
                return self._closed(event)
            case _:
                return []

    def _started(self, event: SpeechStart) -> list[Message]:
        item = _Item(f"item_{uuid.uuid4().hex[:20]}", announced=not self._manual)
        self._items[event.segment_id] = item
        if not item.announced:
            return []
        return [
            {
                "type": "input_audio_buffer.speech_started",
                "event_id": event_id(),
                "audio_start_ms": event.timestamp_ms,
                "item_id": item.id,
            }
        ]

    def _partial(self, event: TranscriptPartial) -> list[Message]:
        item = self._items.get(event.segment_id)
        if item is None:
            return []
        item.latest = event.text
        return self._delta(item, event.text) if item.announced else []

    def _delta(self, item: _Item, text: str) -> list[Message]:
        if not text.startswith(item.sent) or len(text) == len(item.sent):
            return []  # appends only: text the client has would change
        delta, item.sent = text[len(item.sent) :], text
        return [
            {
                "type": f"{_TRANSCRIPTION}.delta",
                "event_id": event_id(),
                "item_id": item.id,
                "content_index": 0,
                "delta": delta,
            }
        ]

    def _ended(self, event: SegmentEnded) -> list[Message]:
        item = self._items.get(event.segment_id)
        if item is None:
            return []
        messages: list[Message] = []
        if event.by_vad and item.announced:
            messages.append(
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "event_id": event_id(),
                    "audio_end_ms": event.timestamp_ms,
                    "item_id": item.id,
                }
            )
        previous, self._previous = self._previous, item.id
        item.previous = previous
        item.audio_s = event.audio_ms / 1000
        item.committed = True
        messages.append(
            {
                "type": "input_audio_buffer.committed",
                "event_id": event_id(),
                "previous_item_id": previous,
                "item_id": item.id,
            }
        )
        kind = (
            "conversation.item.added"
            if self._dialect is Dialect.CURRENT
            else "conversation.item.created"
        )
        messages.append(
            {
                "type": kind,
                "event_id": event_id(),
                "previous_item_id": previous,
                "item": _user_item(item.id, None, "in_progress"),
            }
        )
        if not item.announced:
            item.announced = True
            messages.extend(self._delta(item, item.latest))
        return messages

    def _final(self, event: TranscriptFinal) -> list[Message]:
        item = self._items.pop(event.segment_id, None)
        if item is None:
            return []
        # The final is authoritative; a last delta completes the text when the deltas
        # are its start (post-processing may have rewritten words already sent).
        messages = self._delta(item, event.text)
        messages.append(
            {
                "type": f"{_TRANSCRIPTION}.completed",
                "event_id": event_id(),
                "item_id": item.id,
                "content_index": 0,
                "transcript": event.text,
                "usage": {"type": "duration", "seconds": round(item.audio_s, 3)},
            }
        )
        if self._dialect is Dialect.CURRENT:
            messages.append(
                {
                    "type": "conversation.item.done",
                    "event_id": event_id(),
                    "previous_item_id": item.previous,
                    "item": _user_item(item.id, event.text, "completed"),
                }
            )
        return messages

    def _error(self, event: ErrorEvent) -> list[Message]:
        if event.recoverable:
            if event.code in _SILENT_ERRORS:
                return []
            return [error_message(event.code, event.message, param=event.param)]
        failed = [
            {
                "type": f"{_TRANSCRIPTION}.failed",
                "event_id": event_id(),
                "item_id": item.id,
                "content_index": 0,
                "error": {
                    "type": "server_error",
                    "code": event.code,
                    "message": event.message,
                    "param": None,
                },
            }
            for item in self._items.values()
            if item.committed
        ]
        self._items.clear()
        return [*failed, error_message(event.code, event.message, kind="server_error")]

    def _closed(self, event: SessionClosed) -> list[Message]:
        if event.reason in (CloseReason.INIT_TIMEOUT, CloseReason.HOLD_TIMEOUT):
            return [
                error_message(
                    "session_expired",
                    "The session heard no speech for too long and was closed.",
                )
            ]
        return []


def _user_item(item_id: str, transcript: str | None, status: str) -> Message:
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": status,
        "role": "user",
        "content": [{"type": "input_audio", "transcript": transcript}],
    }
