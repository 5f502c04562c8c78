"""What an STT worker answers for a request its engine cannot serve: INVALID_ARGUMENT naming
the field, checked against the capabilities the engine declared, before any decoding."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import pytest

from tests.unit.wire.context import Aborted, RecordingContext
from theo.engines.stt.backend import (
    LoadedModelInfo,
    SegmentDecode,
    SegmentOptions,
    STTBackend,
    STTCapabilities,
)
from theo.engines.stt.servicer import STTWorkerServicer
from theo.manifest import EngineConfig
from theo.types import BatchResult, StreamAudio, Task, TranscribeParams, TranscribeRequest
from theo.wire.errors import error_from_rpc
from theo.wire.proto import stt_worker_pb2 as pb
from theo.wire.stt import request_to_upload
from theo.wire.stt_realtime import frame_to_proto

ENGLISH_ONLY = STTCapabilities(translation=False, word_timestamps=False, languages=("en",))
MULTILINGUAL = STTCapabilities(translation=True, languages=("en", "pt"))


class CountingBackend(STTBackend):
    """Decodes nothing; counts the calls that reached it."""

    engine_name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def load(self, model_dir: Path, config: EngineConfig) -> LoadedModelInfo:
        raise NotImplementedError

    def transcribe(
        self, audio: npt.NDArray[np.float32], params: TranscribeParams, cancel: threading.Event
    ) -> BatchResult:
        self.calls += 1
        return BatchResult(text="ok", language=params.language or "en", duration=0.0)

    def decode_segment(
        self, audio: npt.NDArray[np.float32], options: SegmentOptions
    ) -> SegmentDecode:
        self.calls += 1
        return SegmentDecode(text="ok", words=(), language="en", confidence=1.0)

    def tail_tokens(self, text: str, max_tokens: int) -> str:
        return text


def _servicer(capabilities: STTCapabilities) -> tuple[STTWorkerServicer, CountingBackend]:
    backend = CountingBackend()
    servicer = STTWorkerServicer(backend, "m")
    servicer.mark_loaded(LoadedModelInfo("counting", "cpu", "int8", capabilities))
    return servicer, backend


async def _messages(items: Any) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def _transcribe(capabilities: STTCapabilities, params: TranscribeParams) -> Any:
    servicer, backend = _servicer(capabilities)
    context = RecordingContext()
    request = TranscribeRequest("m", b"\x00\x00" * 1600, params)
    try:
        answer = await servicer.TranscribeFileUpload(
            _messages(request_to_upload(request)),
            context,  # type: ignore[arg-type]
        )
    except Aborted:
        assert backend.calls == 0
        return error_from_rpc(context.as_rpc_error(), "m")
    finally:
        servicer.shutdown()
    return answer


@pytest.mark.parametrize(
    ("capabilities", "params", "param", "message"),
    [
        (
            ENGLISH_ONLY,
            TranscribeParams(language="pt"),
            "language",
            "This model is English-only; language 'pt' is not supported.",
        ),
        (
            MULTILINGUAL,
            TranscribeParams(language="xx"),
            "language",
            "Unsupported language 'xx'.",
        ),
        (
            ENGLISH_ONLY,
            TranscribeParams(task=Task.TRANSLATE),
            "model",
            "This model is English-only; it cannot translate.",
        ),
        (
            STTCapabilities(translation=False),
            TranscribeParams(task=Task.TRANSLATE),
            "model",
            "This model cannot translate.",
        ),
        (
            ENGLISH_ONLY,
            TranscribeParams(word_timestamps=True),
            "timestamp_granularities",
            "This model does not produce word timestamps.",
        ),
    ],
)
async def test_a_batch_request_beyond_the_capabilities_is_refused(
    capabilities: STTCapabilities, params: TranscribeParams, param: str, message: str
) -> None:
    error = await _transcribe(capabilities, params)
    assert (error.param, error.message) == (param, message)


@pytest.mark.parametrize(
    "params",
    [
        TranscribeParams(language="pt", task=Task.TRANSLATE, word_timestamps=True),
        TranscribeParams(),  # detect the language
    ],
)
async def test_a_batch_request_within_the_capabilities_is_decoded(
    params: TranscribeParams,
) -> None:
    answer = await _transcribe(MULTILINGUAL, params)
    assert isinstance(answer, pb.TranscribeFileResponse) and answer.text == "ok"


async def _stream(capabilities: STTCapabilities, *frames: StreamAudio) -> RecordingContext:
    servicer, backend = _servicer(capabilities)
    context = RecordingContext()
    messages = _messages(frame_to_proto(f, "s") for f in frames)
    try:
        with pytest.raises(Aborted):
            async for _ in servicer.TranscribeStream(messages, context):  # type: ignore[arg-type]
                pass
    finally:
        servicer.shutdown()
    assert backend.calls == 0
    return context


async def test_a_stream_frame_in_a_language_the_model_cannot_hear_is_refused() -> None:
    context = await _stream(
        ENGLISH_ONLY, StreamAudio(segment_id=1, audio_pcm16=b"\x00\x00" * 320, language="pt")
    )
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.trailers == (("theo-param", "language"),)
    assert context.details == "This model is English-only; language 'pt' is not supported."


async def test_a_model_that_cannot_stream_refuses_the_stream() -> None:
    context = await _stream(STTCapabilities(streaming=False))
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.trailers == (("theo-param", "model"),)
    assert context.details == "This model cannot transcribe a stream."
