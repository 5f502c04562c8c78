"""The OpenAI Realtime adapter's pure parts: session objects <-> Theo settings, and Theo
session events -> OpenAI server events."""

from __future__ import annotations

from typing import Any

import pytest

from theo.server.transports.openai_events import OpenAIEvents
from theo.server.transports.openai_session import (
    Dialect,
    OpenAIParamError,
    parse_update,
    session_object,
)
from theo.session.config import SessionConfig
from theo.session.events import (
    CloseReason,
    ErrorEvent,
    InputCleared,
    SegmentEnded,
    SessionClosed,
    SessionUpdated,
    SpeechStart,
    TranscriptFinal,
    TranscriptPartial,
)


def _current(**audio_input: Any) -> dict[str, Any]:
    return {"type": "transcription", "audio": {"input": audio_input}}


def test_a_current_form_update_maps_every_field() -> None:
    update = parse_update(
        _current(
            format={"type": "audio/pcm", "rate": 16000},
            transcription={
                "model": "gpt-4o-transcribe",
                "language": "pt",
                "prompt": "PIX",
                "keywords": ["CPF"],
            },
            turn_detection={
                "type": "server_vad",
                "threshold": 0.6,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 500,
                "create_response": False,
            },
            noise_reduction={"type": "far_field"},
        ),
        Dialect.CURRENT,
    )
    assert update.model == "gpt-4o-transcribe" and update.noise_type == "far_field"
    assert update.changes == {
        "input_audio_format": "pcm16",
        "input_sample_rate": 16000,  # a Theo extension: OpenAI has only 24 kHz
        "language": "pt",
        "prompt": "PIX",
        "hot_words": ["CPF"],
        "turn_detection": "vad",
        "vad_threshold": 0.6,
        "vad_prefix_padding_ms": 300,
        "vad_silence_ms": 500,
        "preprocessing": {"denoise": "on"},
    }
    config = SessionConfig().updated(update.changes)
    view = session_object("sess_1", "m", config, Dialect.CURRENT, update.noise_type)
    assert view["audio"]["input"]["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.6,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
    }
    assert view["audio"]["input"]["noise_reduction"] == {"type": "far_field"}
    assert view["audio"]["input"]["transcription"]["keywords"] == ["CPF"]


def test_a_beta_update_maps_its_fields_and_only_those_present() -> None:
    update = parse_update({"input_audio_format": "g711_alaw", "turn_detection": None}, Dialect.BETA)
    assert update.changes == {
        "input_audio_format": "g711_alaw",
        "input_sample_rate": 8000,
        "turn_detection": "manual",
    }
    config = SessionConfig().updated(update.changes)
    view = session_object("sess_1", "m", config, Dialect.BETA, None)
    assert view["input_audio_format"] == "g711_alaw" and view["turn_detection"] is None
    assert parse_update({}, Dialect.BETA).changes == {}


@pytest.mark.parametrize(
    ("session", "code", "param"),
    [
        ({"type": "realtime"}, "unsupported_value", "session.type"),
        (
            _current(format={"type": "audio/opus"}),
            "invalid_value",
            "session.audio.input.format.type",
        ),
        (
            _current(format={"type": "audio/pcm", "rate": 96000}),
            "invalid_value",
            "session.audio.input.format.rate",
        ),
        (_current(transcription=None), "unsupported_value", "session.audio.input.transcription"),
        (
            _current(transcription={"delay": "low"}),
            "unsupported_value",
            "session.audio.input.transcription.delay",
        ),
        (
            _current(transcription={"languages": ["en", "pt"]}),
            "unsupported_value",
            "session.audio.input.transcription.languages",
        ),
        (
            _current(turn_detection={"type": "server_vad", "idle_timeout_ms": 5000}),
            "unsupported_value",
            "session.audio.input.turn_detection.idle_timeout_ms",
        ),
        (
            _current(noise_reduction={"type": "near_field", "strength": 0.5}),
            "unsupported_value",
            "session.audio.input.noise_reduction.strength",
        ),
        (
            {"type": "transcription", "include": ["item.input_audio_transcription.logprobs"]},
            "unsupported_value",
            "session.include",
        ),
        (_current(output={}), "unknown_parameter", "session.audio.input.output"),
        ({"input_audio_format": "opus"}, "invalid_value", "session.input_audio_format"),
        ({"client_secret": {}}, "unknown_parameter", "session.client_secret"),
    ],
)
def test_fields_theo_cannot_honour_are_named(
    session: dict[str, Any], code: str, param: str
) -> None:
    dialect = Dialect.BETA if "type" not in session and "audio" not in session else Dialect.CURRENT
    with pytest.raises(OpenAIParamError) as caught:
        parse_update(session, dialect)
    assert (caught.value.code, caught.value.param) == (code, param)


def _translate(events: OpenAIEvents, *session_events: Any) -> list[dict[str, Any]]:
    return [message for event in session_events for message in events.translate(event)]


def _view(config: SessionConfig) -> dict[str, Any]:
    return session_object("sess_1", "m", config, Dialect.CURRENT, None)


def test_a_turn_becomes_openai_events_with_append_only_deltas() -> None:
    events = OpenAIEvents(Dialect.CURRENT, _view)
    messages = _translate(
        events,
        SpeechStart(1, 300),
        TranscriptPartial(1, "he was", 900),
        TranscriptPartial(1, "he was not", 1200),
        SegmentEnded(1, 2990, 2900, by_vad=True),
        TranscriptFinal(1, "he was not an ill disposed young man", 100, 2990, "en", 0.9),
        SpeechStart(2, 4000),
        SegmentEnded(2, 5000, 1200, by_vad=True),
        TranscriptFinal(2, "Dois mil.", 4000, 5000, "pt", 0.9),
    )
    kinds = [m["type"] for m in messages]
    prefix = "conversation.item.input_audio_transcription"
    assert kinds[:9] == [
        "input_audio_buffer.speech_started",
        f"{prefix}.delta",
        f"{prefix}.delta",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        f"{prefix}.delta",
        f"{prefix}.completed",
        "conversation.item.done",
    ]
    first = messages[0]["item_id"]
    deltas = [m for m in messages if m["type"] == f"{prefix}.delta"]
    assert [m["delta"] for m in deltas if m["item_id"] == first] == [
        "he was",
        " not",
        " an ill disposed young man",
    ]
    # A turn without partials gets its text as one delta before it completes.
    assert [m["delta"] for m in deltas if m["item_id"] != first] == ["Dois mil."]
    completed = messages[7]
    assert completed["usage"] == {"type": "duration", "seconds": 2.9}
    assert messages[8]["item"]["content"][0]["transcript"] == completed["transcript"]
    second_committed = [m for m in messages if m["type"] == "input_audio_buffer.committed"][1]
    assert second_committed["previous_item_id"] == first
    assert len({m["event_id"] for m in messages}) == len(messages)


def test_manual_turns_hold_their_deltas_until_the_commit() -> None:
    events = OpenAIEvents(Dialect.BETA, _view)
    events.set_manual(True)
    messages = _translate(
        events,
        SpeechStart(1, 0),
        TranscriptPartial(1, "five", 500),
        SegmentEnded(1, 1500, 1500, by_vad=False),
        TranscriptFinal(1, "five five", 0, 1500, "en", 0.9),
    )
    assert [m["type"] for m in messages] == [
        "input_audio_buffer.committed",
        "conversation.item.created",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
    ]


def test_failures_clears_updates_and_expiry() -> None:
    events = OpenAIEvents(Dialect.CURRENT, _view)
    events.update_replies.append("session.updated")
    failed = _translate(
        events,
        SessionUpdated(SessionConfig(language="en")),
        SpeechStart(1, 0),
        SegmentEnded(1, 900, 900, by_vad=True),
        ErrorEvent("worker_crashed", "The worker died.", recoverable=True, resume_segment_id=1),
        ErrorEvent("worker_unavailable", "The worker did not come back.", recoverable=False),
        InputCleared(None),
        SessionClosed("sess_1", CloseReason.HOLD_TIMEOUT),
    )
    kinds = [m["type"] for m in failed]
    assert kinds[0] == "session.updated"
    assert failed[0]["session"]["audio"]["input"]["transcription"]["language"] == "en"
    # A recovered crash is not an error to OpenAI clients (they treat any error as fatal).
    assert kinds[5:] == [
        "conversation.item.input_audio_transcription.failed",
        "error",
        "input_audio_buffer.cleared",
        "error",
    ]
    assert failed[5]["error"]["code"] == "worker_unavailable"
    assert failed[6]["error"]["type"] == "server_error"
    assert failed[8]["error"]["code"] == "session_expired"
