"""Batch speech-to-text on the wire: requests and results, both directions.

The API process builds the request and reads the result; the worker reads the request and
builds the result. Streaming frames and transcripts are in :mod:`theo.wire.stt_realtime`.
"""

from __future__ import annotations

from collections.abc import Iterator

from theo.types import (
    ENGINE_SAMPLE_RATE,
    BatchResult,
    Segment,
    Task,
    TranscribeParams,
    TranscribeRequest,
    Word,
)
from theo.wire.proto import stt_worker_pb2 as pb

_TASK_TO_PROTO = {Task.TRANSCRIBE: pb.TASK_TRANSCRIBE, Task.TRANSLATE: pb.TASK_TRANSLATE}
_TASK_FROM_PROTO = {v: k for k, v in _TASK_TO_PROTO.items()}


UPLOAD_CHUNK_BYTES = 1 << 20
"""Audio per message of a ``TranscribeFileUpload`` (32 s of 16 kHz PCM16)."""


def request_to_proto(
    request: TranscribeRequest, *, with_audio: bool = True
) -> pb.TranscribeFileRequest:
    """Build the gRPC request for a batch transcription (``with_audio=False``: no PCM)."""
    params = request.params
    return pb.TranscribeFileRequest(
        request_id=request.request_id,
        audio_pcm16=request.audio_pcm16 if with_audio else b"",
        sample_rate=ENGINE_SAMPLE_RATE,
        language=params.language or "",
        task=_TASK_TO_PROTO[params.task],
        initial_prompt=params.prompt or "",
        temperature=params.temperature,
        word_timestamps=params.word_timestamps,
        hot_words=list(params.hot_words),
        coarse_segments=params.coarse_segments,
    )


def request_to_upload(
    request: TranscribeRequest, chunk_bytes: int = UPLOAD_CHUNK_BYTES
) -> Iterator[pb.TranscribeFileRequest]:
    """The messages of a ``TranscribeFileUpload``: the fields first, then the audio in pieces.

    A clip sent as one message exists three times in the API process at once (the bytes,
    the message, its serialization: an hour of audio is 110 MB each); in pieces, only the
    bytes and one piece do.
    """
    yield request_to_proto(request, with_audio=False)
    audio = memoryview(request.audio_pcm16)
    for start in range(0, len(audio), chunk_bytes):
        yield pb.TranscribeFileRequest(audio_pcm16=bytes(audio[start : start + chunk_bytes]))


def params_from_proto(message: pb.TranscribeFileRequest) -> TranscribeParams:
    """Decoding options carried by a gRPC request."""
    return TranscribeParams(
        language=message.language or None,
        prompt=message.initial_prompt or None,
        temperature=message.temperature,
        word_timestamps=message.word_timestamps,
        task=_TASK_FROM_PROTO.get(message.task, Task.TRANSCRIBE),
        hot_words=tuple(message.hot_words),
        coarse_segments=message.coarse_segments,
    )


def word_to_proto(word: Word) -> pb.Word:
    """A recognised word for the wire."""
    return pb.Word(word=word.word, start=word.start, end=word.end, probability=word.probability)


def word_from_proto(word: pb.Word) -> Word:
    """A recognised word from the wire."""
    return Word(word=word.word, start=word.start, end=word.end, probability=word.probability)


def segment_to_proto(segment: Segment) -> pb.Segment:
    """Serialise one decoded segment for the wire."""
    return pb.Segment(
        id=segment.id,
        seek=segment.seek,
        start=segment.start,
        end=segment.end,
        text=segment.text,
        tokens=list(segment.tokens),
        temperature=segment.temperature,
        avg_logprob=segment.avg_logprob,
        compression_ratio=segment.compression_ratio,
        no_speech_prob=segment.no_speech_prob,
        words=[word_to_proto(w) for w in segment.words],
    )


def segment_from_proto(segment: pb.Segment) -> Segment:
    """Rebuild one decoded segment from the wire."""
    return Segment(
        id=segment.id,
        seek=segment.seek,
        start=segment.start,
        end=segment.end,
        text=segment.text,
        tokens=tuple(segment.tokens),
        temperature=segment.temperature,
        avg_logprob=segment.avg_logprob,
        compression_ratio=segment.compression_ratio,
        no_speech_prob=segment.no_speech_prob,
        words=tuple(word_from_proto(w) for w in segment.words),
    )


def result_to_proto(result: BatchResult) -> pb.TranscribeFileResponse:
    """Serialise a batch result for the wire."""
    return pb.TranscribeFileResponse(
        text=result.text,
        language=result.language,
        duration=result.duration,
        segments=[segment_to_proto(s) for s in result.segments],
    )


def result_from_proto(message: pb.TranscribeFileResponse) -> BatchResult:
    """Rebuild a batch result from the wire."""
    return BatchResult(
        text=message.text,
        language=message.language,
        duration=message.duration,
        segments=tuple(segment_from_proto(s) for s in message.segments),
    )
