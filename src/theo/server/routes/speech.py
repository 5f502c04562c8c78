"""POST /v1/audio/speech (OpenAI contract, streamed) and GET /v1/audio/voices."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from theo.errors import InvalidRequestError, TheoError
from theo.logging import get_logger
from theo.registry.store import InstalledModel
from theo.server.disconnect import ClientDisconnectedError, cancel_on_disconnect
from theo.server.errors import CLIENT_CLOSED_REQUEST, classify
from theo.server.speech.encoders import (
    MEDIA_TYPES,
    PCM_SAMPLE_RATE,
    SpeechFormat,
    create_encoder,
)
from theo.server.speech.response import SpeechResponse, SpeechRun, audio_body, sse_body
from theo.server.state import AppState
from theo.speech_text import MAX_SPEECH_CHARS, check_speakable
from theo.types import ModelType, SpeechRequest, VoiceCatalog

router = APIRouter()
log = get_logger("server.speech")

MAX_INPUT_CHARS = MAX_SPEECH_CHARS


class SpeechBody(BaseModel):
    """The JSON body of ``POST /v1/audio/speech`` (OpenAI's fields plus ``language``)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    """An installed text-to-speech model."""
    input: str = Field(min_length=1, max_length=MAX_INPUT_CHARS)
    """The text to speak."""
    voice: str = ""
    """A voice of the model (``GET /v1/audio/voices``); empty means its default voice."""
    response_format: SpeechFormat = SpeechFormat.MP3
    """Audio encoding of the response."""
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    """Pace multiplier; models may accept a narrower range (Kokoro: 0.5-2.0)."""
    stream_format: Literal["audio", "sse"] = "audio"
    """``audio``: the audio bytes; ``sse``: server-sent ``speech.audio.delta`` events."""
    language: str = ""
    """Language of the text, e.g. ``en-us`` or ``pt-br``; empty means the voice's own."""

    @field_validator("input")
    @classmethod
    def _printable(cls, value: str) -> str:
        check_speakable(value)
        return value


def _tts_model(state: AppState, name: str) -> InstalledModel:
    model = state.model(name)
    if model.manifest.type != ModelType.TTS:
        raise InvalidRequestError(
            f"Model '{name}' is a {model.manifest.type.value} model, not text-to-speech.",
            param="model",
        )
    return model


@router.post("/v1/audio/speech")
async def create_speech(request: Request, body: SpeechBody) -> Response:
    """Speak ``input``; the audio streams as the worker produces it, piece by piece."""
    arrived = time.perf_counter()
    state: AppState = request.app.state.theo
    _tts_model(state, body.model)
    speech = SpeechRequest(
        model=body.model,
        text=body.input,
        voice=body.voice,
        language=body.language,
        speed=body.speed,
        request_id=request.headers.get("x-request-id") or uuid.uuid4().hex,
    )
    fmt = body.response_format
    log.info(
        "speech_requested",
        request_id=speech.request_id,
        model=body.model,
        voice=body.voice or None,
        chars=len(body.input),
        response_format=fmt.value,
        stream_format=body.stream_format,
    )
    try:
        stream = await cancel_on_disconnect(request, state.synthesis.open(speech))
    except ClientDisconnectedError:
        state.metrics.tts_request_done(body.model, fmt.value, "cancelled")
        log.info("client_disconnected", request_id=speech.request_id)
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    except TheoError as exc:
        outcome = "invalid" if classify(exc)[0] < 500 else "error"
        state.metrics.tts_request_done(body.model, fmt.value, outcome)
        raise
    run = SpeechRun(
        stream,
        state.metrics,
        body.model,
        fmt.value,
        speech.request_id,
        arrived,
        time.perf_counter(),
    )
    sample_rate = stream.first.sample_rate
    try:
        encoder = create_encoder(fmt, sample_rate)
    except BaseException:
        run.outcome = "error"
        await run.close()
        raise
    out_rate = PCM_SAMPLE_RATE if fmt is SpeechFormat.PCM else sample_rate
    headers = {"X-Sample-Rate": str(out_rate), "X-Request-Id": speech.request_id}
    if body.stream_format == "sse":
        return SpeechResponse(sse_body(run, encoder), run, "text/event-stream", headers)
    return SpeechResponse(audio_body(run, encoder), run, MEDIA_TYPES[fmt], headers)


def _catalog_json(catalog: VoiceCatalog) -> dict[str, Any]:
    return {
        "object": "voice_list",
        "model": catalog.model,
        "status": "ready",
        "default_voice": catalog.default_voice,
        "languages": list(catalog.languages),
        "sample_rate": catalog.sample_rate,
        "speed": {"min": catalog.min_speed, "max": catalog.max_speed},
        "voices": [
            {"id": v.id, "name": v.name, "language": v.language, "gender": v.gender or None}
            for v in catalog.voices
        ],
    }


@router.get("/v1/audio/voices")
async def list_voices(request: Request, model: str | None = None) -> JSONResponse:
    """The voices of every text-to-speech model, or of ``model`` only."""
    state: AppState = request.app.state.theo
    if model is not None:
        _tts_model(state, model)
        catalog = await state.synthesis.voices(model)
        return JSONResponse({"object": "list", "data": [_catalog_json(catalog)]})
    data: list[dict[str, Any]] = []
    for name, installed in sorted(state.models.items()):
        if installed.manifest.type != ModelType.TTS:
            continue
        try:
            data.append(_catalog_json(await state.synthesis.voices(name)))
        except TheoError as exc:
            # One model still loading must not hide the voices of the others.
            data.append(
                {
                    "object": "voice_list",
                    "model": name,
                    "status": "unavailable",
                    "error": exc.message,
                    "voices": [],
                }
            )
    return JSONResponse({"object": "list", "data": data})
