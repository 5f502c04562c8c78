"""Realtime speech-to-text on the wire: audio frames in, transcript events out.

A session's ``TranscribeStream`` carries :class:`~theo.types.StreamAudio` frames from the
API process to the worker and :class:`~theo.types.StreamTranscript` events back.
"""

from __future__ import annotations

from theo.types import StreamAudio, StreamTranscript, TranscriptKind
from theo.wire.proto import stt_worker_pb2 as pb
from theo.wire.stt import word_from_proto, word_to_proto

SESSION_METADATA = "theo-session-id"
"""Call metadata naming the realtime session a TranscribeStream serves (for the logs)."""

_KIND_TO_PROTO = {
    TranscriptKind.PARTIAL: pb.TRANSCRIPT_EVENT_TYPE_PARTIAL,
    TranscriptKind.FINAL: pb.TRANSCRIPT_EVENT_TYPE_FINAL,
    TranscriptKind.TENTATIVE: pb.TRANSCRIPT_EVENT_TYPE_TENTATIVE,
}
_KIND_FROM_PROTO = {v: k for k, v in _KIND_TO_PROTO.items()}


def frame_to_proto(audio: StreamAudio, session_id: str) -> pb.AudioFrame:
    """One frame of a session's current segment, for the wire."""
    return pb.AudioFrame(
        session_id=session_id,
        audio_pcm16=audio.audio_pcm16,
        is_last=audio.is_last,
        language=audio.language or "",
        initial_prompt=audio.prompt or "",
        hot_words=list(audio.hot_words),
        segment_id=audio.segment_id,
        enable_partials=audio.enable_partials,
        speaker_paused=audio.speaker_paused,
    )


def frame_from_proto(message: pb.AudioFrame) -> tuple[str, StreamAudio]:
    """The session id and the audio of a frame from the wire."""
    return message.session_id, StreamAudio(
        segment_id=message.segment_id,
        audio_pcm16=message.audio_pcm16,
        is_last=message.is_last,
        language=message.language or None,
        prompt=message.initial_prompt or None,
        hot_words=tuple(message.hot_words),
        enable_partials=message.enable_partials,
        speaker_paused=message.speaker_paused,
    )


def transcript_to_proto(transcript: StreamTranscript, session_id: str) -> pb.TranscriptEvent:
    """A partial or final transcript, for the wire."""
    return pb.TranscriptEvent(
        session_id=session_id,
        type=_KIND_TO_PROTO[transcript.kind],
        text=transcript.text,
        segment_id=transcript.segment_id,
        start_ms=transcript.start_ms,
        end_ms=transcript.end_ms,
        language=transcript.language,
        confidence=transcript.confidence,
        words=[word_to_proto(w) for w in transcript.words],
        unstable_text=transcript.unstable_text,
    )


def transcript_from_proto(message: pb.TranscriptEvent) -> StreamTranscript:
    """A partial or final transcript from the wire."""
    return StreamTranscript(
        kind=_KIND_FROM_PROTO[message.type],
        segment_id=message.segment_id,
        text=message.text,
        start_ms=message.start_ms,
        end_ms=message.end_ms,
        language=message.language,
        confidence=message.confidence,
        words=tuple(word_from_proto(w) for w in message.words),
        unstable_text=message.unstable_text,
    )
