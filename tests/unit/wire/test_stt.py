"""Speech-to-text messages survive the trip to the worker and back unchanged."""

from __future__ import annotations

import pytest

from theo.types import (
    BatchResult,
    Segment,
    StreamAudio,
    StreamTranscript,
    TranscriptKind,
    Word,
)
from theo.wire.stt import result_from_proto, result_to_proto
from theo.wire.stt_realtime import (
    frame_from_proto,
    frame_to_proto,
    transcript_from_proto,
    transcript_to_proto,
)

WORDS = (Word(" hello", 0.0, 0.5, 0.875), Word(" world", 0.5, 1.0, 0.625))


def test_a_batch_result_round_trips() -> None:
    result = BatchResult(
        text="hello world",
        language="en",
        duration=1.5,
        segments=(
            Segment(
                id=0,
                start=0.0,
                end=1.0,
                text=" hello world",
                seek=3,
                tokens=(1, 2, 3),
                temperature=0.5,
                avg_logprob=-0.25,
                compression_ratio=1.5,
                no_speech_prob=0.125,
                words=WORDS,
            ),
            Segment(id=1, start=1.0, end=1.5, text=""),
        ),
    )
    assert result_from_proto(result_to_proto(result)) == result


@pytest.mark.parametrize(
    "audio",
    [
        StreamAudio(segment_id=7, audio_pcm16=b"\x01\x02" * 8),
        StreamAudio(
            segment_id=2**40,
            audio_pcm16=b"",
            is_last=True,
            language="pt",
            prompt="Earlier words.",
            hot_words=("PIX", "TED"),
            enable_partials=False,
            speaker_paused=True,
        ),
    ],
)
def test_a_stream_frame_round_trips_with_its_session(audio: StreamAudio) -> None:
    assert frame_from_proto(frame_to_proto(audio, "sess-1")) == ("sess-1", audio)


@pytest.mark.parametrize("kind", list(TranscriptKind))
def test_a_stream_transcript_round_trips(kind: TranscriptKind) -> None:
    transcript = StreamTranscript(
        kind=kind,
        segment_id=3,
        text="hello world",
        start_ms=120,
        end_ms=1_500,
        language="en",
        confidence=0.75,
        words=WORDS,
    )
    message = transcript_to_proto(transcript, "sess-1")
    assert message.session_id == "sess-1"
    assert transcript_from_proto(message) == transcript
