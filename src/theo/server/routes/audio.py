"""POST /v1/audio/transcriptions and /v1/audio/translations (OpenAI contract)."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import numpy.typing as npt
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException

from theo.audio.decode import check_has_signal, decode_to_pcm16
from theo.errors import CapabilityError, InvalidRequestError
from theo.logging import get_logger
from theo.server.audio_form import AudioForm, parse_audio_form
from theo.server.disconnect import ClientDisconnectedError, cancel_on_disconnect
from theo.server.formatters import render
from theo.server.state import AppState
from theo.types import ModelType, Task, TranscribeRequest

router = APIRouter()
log = get_logger("server.audio")

_CLIENT_CLOSED_REQUEST = 499


async def _read_form(request: Request) -> FormData:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequestError(
            "The request body must be multipart/form-data with a 'file' field.", param="file"
        )
    try:
        return await request.form(max_files=1, max_fields=32)
    except MultiPartException as exc:
        raise InvalidRequestError(f"Malformed multipart body: {exc.message}", param="file") from exc


def _decode_checked(data: bytes) -> npt.NDArray[np.int16]:
    samples = decode_to_pcm16(data)
    check_has_signal(samples)
    return samples


def _check_model(state: AppState, form: AudioForm) -> None:
    model = state.model(form.model)
    if model.manifest.type != ModelType.STT:
        raise InvalidRequestError(
            f"Model '{form.model}' is a {model.manifest.type.value} model, not speech-to-text.",
            param="model",
        )
    caps = model.manifest.capabilities
    if form.params.task == Task.TRANSLATE and not caps.translation:
        raise CapabilityError(
            f"Model '{form.model}' cannot translate; use a multilingual model such as "
            "'faster-whisper-base'.",
            param="model",
        )
    language = form.params.language
    if language and caps.languages and language not in caps.languages:
        raise CapabilityError(
            f"Model '{form.model}' supports only: {', '.join(caps.languages)}.", param="language"
        )


async def _handle(request: Request, task: Task) -> Response:
    state: AppState = request.app.state.theo
    form_data = await _read_form(request)
    try:
        form = parse_audio_form(form_data, task, state.settings.max_file_size_bytes)
        _check_model(state, form)
        data = await form.upload.read()
    finally:
        await form_data.close()
    if not data:
        raise InvalidRequestError("The uploaded file is empty.", param="file")
    samples = await asyncio.to_thread(_decode_checked, data)
    transcribe_request = TranscribeRequest(
        model=form.model,
        audio_pcm16=samples.tobytes(),
        params=form.params,
        request_id=request.headers.get("x-request-id") or uuid.uuid4().hex,
    )
    try:
        result = await cancel_on_disconnect(request, state.scheduler.transcribe(transcribe_request))
    except ClientDisconnectedError:
        log.info("client_disconnected", request_id=transcribe_request.request_id)
        return Response(status_code=_CLIENT_CLOSED_REQUEST)
    body, media_type = render(result, form.response_format, task, form.include_words)
    if isinstance(body, dict):
        return JSONResponse(body, media_type=media_type)
    return PlainTextResponse(body, media_type=media_type)


@router.post("/v1/audio/transcriptions")
async def create_transcription(request: Request) -> Response:
    """Transcribe an uploaded audio file in its spoken language."""
    return await _handle(request, Task.TRANSCRIBE)


@router.post("/v1/audio/translations")
async def create_translation(request: Request) -> Response:
    """Translate the speech in an uploaded audio file to English text."""
    return await _handle(request, Task.TRANSLATE)
