"""POST /v1/audio/transcriptions and /v1/audio/translations (OpenAI contract)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException

from theo.audio.decode import DecodeLimits
from theo.errors import CapabilityError, InvalidRequestError
from theo.logging import get_logger
from theo.postprocessing.chain import PostProcessingOptions, merge_hot_words
from theo.registry.store import InstalledModel
from theo.server.audio_form import AudioForm, parse_audio_form
from theo.server.batch import postprocess_result, prepare_audio
from theo.server.disconnect import ClientDisconnectedError, cancel_on_disconnect
from theo.server.formatters import render
from theo.server.state import AppState
from theo.server.transcript_stream import stream_transcript
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


def _check_model(state: AppState, form: AudioForm) -> InstalledModel:
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
    return model


async def _handle(request: Request, task: Task) -> Response:
    state: AppState = request.app.state.theo
    form_data = await _read_form(request)
    try:
        form = parse_audio_form(form_data, task, state.settings.max_file_size_bytes)
        model = _check_model(state, form)
        manifest = model.manifest
        # Decode straight from the spooled upload (on disk past 1 MB), before the form closes
        # it: the upload is never copied into memory, and decoding is bounded.
        started = time.perf_counter()
        audio_pcm16 = await asyncio.to_thread(
            prepare_audio,
            form.upload.file,
            manifest.preprocessing,
            form.preprocessing,
            DecodeLimits.from_settings(state.settings),
        )
        state.metrics.preprocessing_done("batch", time.perf_counter() - started)
    finally:
        await form_data.close()

    # Hot words bias the engine (prompt) and correct the text afterwards.
    hot_words = tuple(merge_hot_words(manifest.postprocessing.hot_words, form.params.hot_words))
    transcribe_request = TranscribeRequest(
        model=form.model,
        audio_pcm16=audio_pcm16,
        params=dataclasses.replace(form.params, hot_words=hot_words),
        request_id=request.headers.get("x-request-id") or uuid.uuid4().hex,
    )
    options = PostProcessingOptions(
        manifest.postprocessing,
        itn=form.itn,
        hot_words=tuple(form.params.hot_words),
        itn_engine=state.itn_engines.get(manifest.postprocessing.itn_backend),
        task=task,
    )
    try:
        if form.stream:
            return await stream_transcript(request, state.scheduler, transcribe_request, options)
        result = await cancel_on_disconnect(request, state.scheduler.transcribe(transcribe_request))
    except ClientDisconnectedError:
        log.info("client_disconnected", request_id=transcribe_request.request_id)
        return Response(status_code=_CLIENT_CLOSED_REQUEST)

    started = time.perf_counter()
    result = await asyncio.to_thread(postprocess_result, result, options)
    state.metrics.postprocessing_done("batch", time.perf_counter() - started)

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
