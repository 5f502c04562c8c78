"""Text-to-speech on the wire: requests, audio chunks and voice catalogs, both directions."""

from __future__ import annotations

from theo.types import SpeechChunk, SpeechRequest, Voice, VoiceCatalog
from theo.wire.proto import tts_worker_pb2 as pb

_SPEED_DECIMALS = 4
"""Speeds travel as float32: rounding gives back the value the engine declared (0.5, not
0.5000000xx)."""


def speech_to_proto(request: SpeechRequest) -> pb.SynthesizeRequest:
    """A speech request for the wire (the model is the worker's own)."""
    return pb.SynthesizeRequest(
        request_id=request.request_id,
        text=request.text,
        voice=request.voice,
        speed=request.speed,
        language=request.language,
    )


def speech_from_proto(message: pb.SynthesizeRequest, model: str) -> SpeechRequest:
    """A speech request from the wire, for the worker serving ``model``.

    ``speed`` is passed on as sent: 0 (unset) means the default pace.
    """
    return SpeechRequest(
        model=model,
        text=message.text,
        voice=message.voice,
        language=message.language,
        speed=message.speed,
        request_id=message.request_id,
    )


def chunk_to_proto(chunk: SpeechChunk) -> pb.AudioChunk:
    """The audio of one piece of text, for the wire."""
    return pb.AudioChunk(
        audio_pcm16=chunk.pcm16,
        sample_rate=chunk.sample_rate,
        index=chunk.index,
        total=chunk.total,
        text=chunk.text,
    )


def chunk_from_proto(message: pb.AudioChunk) -> SpeechChunk:
    """The audio of one piece of text from the wire."""
    return SpeechChunk(
        pcm16=message.audio_pcm16,
        sample_rate=message.sample_rate,
        index=message.index,
        total=message.total,
        text=message.text,
    )


def catalog_to_proto(catalog: VoiceCatalog) -> pb.ListVoicesResponse:
    """A model's voices and ranges, for the wire (the model is implied by the worker)."""
    return pb.ListVoicesResponse(
        voices=[
            pb.Voice(id=v.id, name=v.name, language=v.language, gender=v.gender)
            for v in catalog.voices
        ],
        default_voice=catalog.default_voice,
        languages=list(catalog.languages),
        sample_rate=catalog.sample_rate,
        min_speed=catalog.min_speed,
        max_speed=catalog.max_speed,
    )


def catalog_from_proto(message: pb.ListVoicesResponse, model: str) -> VoiceCatalog:
    """The voices and ranges of ``model`` from its worker's answer."""
    return VoiceCatalog(
        model=model,
        voices=tuple(Voice(v.id, v.name, v.language, v.gender) for v in message.voices),
        default_voice=message.default_voice,
        languages=tuple(message.languages),
        sample_rate=message.sample_rate,
        min_speed=round(message.min_speed, _SPEED_DECIMALS),
        max_speed=round(message.max_speed, _SPEED_DECIMALS),
    )
