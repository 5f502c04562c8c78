"""Conversions between protobuf messages and Theo's domain types (both directions)."""

from __future__ import annotations

from theo.proto import stt_worker_pb2 as pb
from theo.types import BatchResult, Segment, Task, TranscribeParams, TranscribeRequest, Word

_TASK_TO_PROTO = {Task.TRANSCRIBE: pb.TASK_TRANSCRIBE, Task.TRANSLATE: pb.TASK_TRANSLATE}
_TASK_FROM_PROTO = {v: k for k, v in _TASK_TO_PROTO.items()}


_AUDIO_FIELD = pb.TranscribeFileRequest.DESCRIPTOR.fields_by_name["audio_pcm16"].number
_LENGTH_DELIMITED = 2  # protobuf wire type of bytes fields


def request_to_proto(
    request: TranscribeRequest, *, with_audio: bool = True
) -> pb.TranscribeFileRequest:
    """Build the gRPC request for a batch transcription (``with_audio=False``: no PCM)."""
    params = request.params
    return pb.TranscribeFileRequest(
        request_id=request.request_id,
        audio_pcm16=request.audio_pcm16 if with_audio else b"",
        sample_rate=16_000,
        language=params.language or "",
        task=_TASK_TO_PROTO[params.task],
        initial_prompt=params.prompt or "",
        temperature=params.temperature,
        word_timestamps=params.word_timestamps,
        hot_words=list(params.hot_words),
    )


def request_to_wire(request: TranscribeRequest) -> bytes:
    """The serialized ``TranscribeFileRequest``, with one copy of the audio instead of three.

    Building the message copies the PCM into it and serializing copies it again; an hour
    of audio is 110 MB per copy. Protobuf parses concatenated encodings as one message, so
    the fields without audio are serialized and the audio field is appended as bytes.
    """
    head = request_to_proto(request, with_audio=False).SerializeToString()
    audio = request.audio_pcm16
    tag = _varint(_AUDIO_FIELD << 3 | _LENGTH_DELIMITED)
    return b"".join((head, tag, _varint(len(audio)), audio))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def params_from_proto(message: pb.TranscribeFileRequest) -> TranscribeParams:
    """Decoding options carried by a gRPC request."""
    return TranscribeParams(
        language=message.language or None,
        prompt=message.initial_prompt or None,
        temperature=message.temperature,
        word_timestamps=message.word_timestamps,
        task=_TASK_FROM_PROTO.get(message.task, Task.TRANSCRIBE),
        hot_words=tuple(message.hot_words),
    )


def _word_to_proto(word: Word) -> pb.Word:
    return pb.Word(word=word.word, start=word.start, end=word.end, probability=word.probability)


def _word_from_proto(word: pb.Word) -> Word:
    return Word(word=word.word, start=word.start, end=word.end, probability=word.probability)


def result_to_proto(result: BatchResult) -> pb.TranscribeFileResponse:
    """Serialise a batch result for the wire."""
    return pb.TranscribeFileResponse(
        text=result.text,
        language=result.language,
        duration=result.duration,
        segments=[
            pb.Segment(
                id=s.id,
                seek=s.seek,
                start=s.start,
                end=s.end,
                text=s.text,
                tokens=list(s.tokens),
                temperature=s.temperature,
                avg_logprob=s.avg_logprob,
                compression_ratio=s.compression_ratio,
                no_speech_prob=s.no_speech_prob,
                words=[_word_to_proto(w) for w in s.words],
            )
            for s in result.segments
        ],
    )


def result_from_proto(message: pb.TranscribeFileResponse) -> BatchResult:
    """Rebuild a batch result from the wire."""
    return BatchResult(
        text=message.text,
        language=message.language,
        duration=message.duration,
        segments=tuple(
            Segment(
                id=s.id,
                seek=s.seek,
                start=s.start,
                end=s.end,
                text=s.text,
                tokens=tuple(s.tokens),
                temperature=s.temperature,
                avg_logprob=s.avg_logprob,
                compression_ratio=s.compression_ratio,
                no_speech_prob=s.no_speech_prob,
                words=tuple(_word_from_proto(w) for w in s.words),
            )
            for s in message.segments
        ),
    )
