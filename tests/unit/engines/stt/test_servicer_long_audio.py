"""Long audio decoded in batches of windows only while no realtime stream decodes on the
worker: a call of several windows would hold an engine lane for seconds while finals wait."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import numpy.typing as npt

from tests.unit.engines.stt.test_servicer_refusals import CountingBackend
from tests.unit.wire.context import RecordingContext
from theo.engines.stt.backend import LoadedModelInfo, STTCapabilities
from theo.engines.stt.servicer import STTWorkerServicer
from theo.types import BatchResult, StreamAudio, TranscribeParams, TranscribeRequest
from theo.wire.proto import stt_worker_pb2 as pb
from theo.wire.stt import request_to_upload
from theo.wire.stt_realtime import frame_to_proto


class ParamsBackend(CountingBackend):
    """Records the parameters each batch request reached the engine with."""

    def __init__(self) -> None:
        super().__init__()
        self.params: list[TranscribeParams] = []

    def transcribe(
        self, audio: npt.NDArray[np.float32], params: TranscribeParams, cancel: threading.Event
    ) -> BatchResult:
        self.params.append(params)
        return super().transcribe(audio, params, cancel)


async def _upload(servicer: STTWorkerServicer, params: TranscribeParams) -> None:
    request = TranscribeRequest("m", b"\x00\x00" * 1600, params)

    async def messages() -> AsyncIterator[pb.TranscribeFileRequest]:
        for message in request_to_upload(request):
            yield message

    await servicer.TranscribeFileUpload(messages(), RecordingContext())  # type: ignore[arg-type]


async def _active(servicer: STTWorkerServicer) -> int:
    health = await servicer.Health(pb.HealthRequest(), RecordingContext())  # type: ignore[arg-type]
    return int(health.active_requests)


async def test_coarse_segments_reach_the_engine_only_while_no_stream_decodes() -> None:
    backend = ParamsBackend()
    servicer = STTWorkerServicer(backend, "m")
    servicer.mark_loaded(LoadedModelInfo("counting", "cpu", "int8", STTCapabilities()))
    close = asyncio.Event()

    async def frames() -> AsyncIterator[Any]:
        yield frame_to_proto(StreamAudio(segment_id=1, audio_pcm16=b"\x00\x00" * 320), "s")
        await close.wait()

    async def stream() -> None:
        async for _ in servicer.TranscribeStream(frames(), RecordingContext()):  # type: ignore[arg-type]
            pass

    try:
        await _upload(servicer, TranscribeParams(coarse_segments=True))
        streaming = asyncio.create_task(stream())
        for _ in range(500):
            if await _active(servicer):
                break
            await asyncio.sleep(0.002)
        await _upload(servicer, TranscribeParams(coarse_segments=True))
        close.set()
        await asyncio.wait_for(streaming, 5)
        await _upload(servicer, TranscribeParams(coarse_segments=True))
    finally:
        servicer.shutdown()
    assert [p.coarse_segments for p in backend.params] == [True, False, True]
