"""The WebSocket protocol's JSON: every session event as exact text, commands parsed."""

from __future__ import annotations

import json
import typing

import pytest

from theo.server.transports.websocket_codec import encode, encode_refusal, parse_command
from theo.session import errors
from theo.session.config import SessionConfig
from theo.session.errors import ClientError
from theo.session.events import (
    CloseReason,
    ErrorEvent,
    FinalWord,
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
    SpeakingEndReason,
    SpeakingStarted,
    SpeechEnd,
    SpeechStart,
    TranscriptCorrection,
    TranscriptFinal,
    TranscriptPartial,
)

CONFIG = SessionConfig(language="pt", hot_words=["PIX"])
CONFIG_JSON = (
    '{"language": "pt", "vad_sensitivity": "normal", "vad_threshold": null, '
    '"vad_silence_ms": 300, "vad_prefix_padding_ms": 200, "dictation": true, '
    '"dictation_silence_ms": 1500, "turn_detection": "vad", '
    '"prompt": null, "hot_words": ["PIX"], '
    '"enable_partial_transcripts": true, "unstable_partials": false, "enable_itn": true, '
    '"input_sample_rate": 16000, '
    '"input_audio_format": "pcm16", '
    '"preprocessing": {"denoise": null, "dc_remove": null, "gain_normalize": null}, '
    '"init_timeout_ms": 30000, "silence_timeout_ms": 30000, "hold_timeout_ms": 300000, '
    '"closing_timeout_ms": 2000, "tts_model": null, "output_sample_rate": null, '
    '"output_audio_format": "pcm16", "tts_mute": true, "tts_mute_tail_ms": 200, "barge_in": false}'
)

CASES: list[tuple[SessionEvent, str]] = [
    (
        SessionCreated("sess_1", "m", CONFIG),
        '{"type": "session.created", "session_id": "sess_1", "model": "m", '
        f'"config": {CONFIG_JSON}}}',
    ),
    (SessionUpdated(CONFIG), f'{{"type": "session.updated", "config": {CONFIG_JSON}}}'),
    (
        SpeechStart(3, 1200),
        '{"type": "vad.speech_start", "segment_id": 3, "timestamp_ms": 1200}',
    ),
    (SpeechEnd(3, 2500), '{"type": "vad.speech_end", "segment_id": 3, "timestamp_ms": 2500}'),
    (
        TranscriptPartial(3, "olá mundo", 1800),
        '{"type": "transcript.partial", "segment_id": 3, "text": "olá mundo", '
        '"timestamp_ms": 1800}',
    ),
    (
        TranscriptPartial(3, "olá", 1500, unstable_text="mundo"),
        '{"type": "transcript.partial", "segment_id": 3, "text": "olá", '
        '"timestamp_ms": 1500, "unstable_text": "mundo"}',
    ),
    (
        TranscriptFinal(
            3, "Olá, mundo.", 1000, 2400, "pt", 0.8765, (FinalWord("Olá,", 1000, 1400, 0.9),)
        ),
        '{"type": "transcript.final", "segment_id": 3, "text": "Olá, mundo.", '
        '"start_ms": 1000, "end_ms": 2400, "language": "pt", "confidence": 0.8765, '
        '"words": [{"word": "Olá,", "start_ms": 1000, "end_ms": 1400, "probability": 0.9}]}',
    ),
    (
        TranscriptFinal(4, "", 0, 0, "", 0.0),
        '{"type": "transcript.final", "segment_id": 4, '
        '"text": "", "start_ms": 0, "end_ms": 0, "language": "", "confidence": 0.0, "words": []}',
    ),
    (
        TranscriptCorrection((4, 5), "Meu CPF é 123.456.789-00.", "pt"),
        '{"type": "transcript.correction", "segment_ids": [4, 5], '
        '"text": "Meu CPF é 123.456.789-00.", "language": "pt"}',
    ),
    (
        SessionHold("sess_1", 9000, 300000),
        '{"type": "session.hold", "session_id": "sess_1", "timestamp_ms": 9000, '
        '"hold_timeout_ms": 300000}',
    ),
    (
        RateLimit(2500, "slow down"),
        '{"type": "session.rate_limit", "delay_ms": 2500, "message": "slow down"}',
    ),
    (
        SessionLagging(3, 2400, "Final overdue."),
        '{"type": "session.lagging", "segment_id": 3, "lag_ms": 2400, "message": "Final overdue."}',
    ),
    (
        FramesDropped(40, 120, "dropped"),
        '{"type": "session.frames_dropped", "dropped_ms": 40, "total_dropped_ms": 120, '
        '"message": "dropped"}',
    ),
    (
        ErrorEvent("invalid_json", "Invalid JSON: Expecting value.", recoverable=True),
        '{"type": "error", "code": "invalid_json", "message": "Invalid JSON: Expecting value.", '
        '"recoverable": true}',
    ),
    (
        errors.rejection(ClientError("frame_too_large", "Too large.")),
        '{"type": "error", "code": "frame_too_large", "message": "Too large.", '
        '"recoverable": true}',
    ),
    (
        errors.worker_crashed(2),
        '{"type": "error", "code": "worker_crashed", "message": "The worker serving this '
        "session stopped. It is being restarted; uncommitted audio will be transcribed again, "
        'nothing is lost.", "recoverable": true, "resume_segment_id": 2}',
    ),
    (
        ErrorEvent("invalid_value", "Bad 'language'.", recoverable=True, param="language"),
        '{"type": "error", "code": "invalid_value", "message": "Bad \'language\'.", '
        '"recoverable": true, "param": "language"}',
    ),
    (
        SpeakingStarted("r1", "piper-en-us-joe-medium", "joe", 16_000, "pcm16"),
        '{"type": "tts.speaking_start", "request_id": "r1", "model": "piper-en-us-joe-medium", '
        '"voice": "joe", "sample_rate": 16000, "format": "pcm16"}',
    ),
    (
        SpeakingEnded("r1", SpeakingEndReason.CANCELLED, 1234),
        '{"type": "tts.speaking_end", "request_id": "r1", "reason": "cancelled", '
        '"duration_ms": 1234}',
    ),
    (
        ErrorEvent("tts_failed", "Engine died.", recoverable=True, request_id="r2"),
        '{"type": "error", "code": "tts_failed", "message": "Engine died.", '
        '"recoverable": true, "request_id": "r2"}',
    ),
    (
        SessionClosed("sess_1", CloseReason.HOLD_TIMEOUT),
        '{"type": "session.closed", "session_id": "sess_1", "reason": "hold_timeout"}',
    ),
]


@pytest.mark.parametrize(("event", "text"), CASES)
def test_each_event_is_exactly_the_documented_json(event: SessionEvent, text: str) -> None:
    assert encode(event) == text
    json.loads(text)  # the expectation itself is valid JSON


def test_every_event_type_has_a_case() -> None:
    covered = {type(event) for event, _ in CASES} | {OutputAudio, SegmentEnded, InputCleared}
    assert covered == set(typing.get_args(SessionEvent))


def test_turn_ends_and_clears_are_not_part_of_this_protocol() -> None:
    # The segment's final and vad.speech_end say it ended; the protocol has no clear.
    assert encode(SegmentEnded(3, 1200, 900, by_vad=True)) is None
    assert encode(InputCleared(None)) is None


def test_spoken_audio_is_not_json() -> None:
    # The transport sends it as a binary message.
    assert encode(OutputAudio("r1", b"\x00\x00", 16_000, "pcm16")) is None


def test_refusals_before_a_session_are_ascii_escaped() -> None:
    event = ErrorEvent("model_not_found", "Model 'só' is not installed.", recoverable=False)
    assert encode_refusal(event) == (
        '{"type": "error", "code": "model_not_found", '
        '"message": "Model \'s\\u00f3\' is not installed.", "recoverable": false}'
    )


def test_commands_are_json_objects_with_a_type() -> None:
    assert parse_command('{"type": "session.configure", "language": "en"}') == {
        "type": "session.configure",
        "language": "en",
    }
    cases = [
        (
            "{not json",
            "invalid_json",
            "Invalid JSON: Expecting property name enclosed in double quotes.",
        ),
        ('["session.close"]', "invalid_command", "Commands are JSON objects with a 'type'."),
        ('{"type": 5}', "invalid_command", "Commands are JSON objects with a 'type'."),
        ('{"type": "' + "x" * 70_000 + '"}', "message_too_large", "Command too large."),
    ]
    for text, code, message in cases:
        with pytest.raises(ClientError) as info:
            parse_command(text)
        assert (info.value.code, info.value.message) == (code, message)
