"""``stream=true`` on ``POST /v1/audio/transcriptions``: server-sent events as OpenAI sends.

One ``transcript.text.delta`` per decoded segment, post-processed (ITN, hot words) as the
non-streaming answer is, so the deltas joined are exactly the final text; then
``transcript.text.done`` with the whole text. The first event is awaited before the
response starts, so a request the worker refuses still gets its HTTP error status.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from theo.logging import get_logger
from theo.postprocessing.chain import PostProcessingOptions, PostProcessor
from theo.server.batch import postprocess_result
from theo.server.disconnect import cancel_on_disconnect
from theo.types import BatchResult, DecodedSegment, TranscribeRequest
from theo.workers.scheduler import Scheduler

log = get_logger("server.transcript_stream")

Event = dict[str, Any]


def _sse(event: Event) -> bytes:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


async def _events(
    decoded: AsyncGenerator[DecodedSegment | BatchResult, None], options: PostProcessingOptions
) -> AsyncGenerator[Event, None]:
    processor = PostProcessor(options)
    said = False
    async with aclosing(decoded):  # closing it cancels the worker call
        async for item in decoded:
            if isinstance(item, DecodedSegment):
                text = await asyncio.to_thread(
                    processor.process, item.segment.text.strip(), item.language
                )
                if text:
                    yield {"type": "transcript.text.delta", "delta": f" {text}" if said else text}
                    said = True
                continue
            result = await asyncio.to_thread(postprocess_result, item, options)
            yield {"type": "transcript.text.done", "text": result.text}


async def stream_transcript(
    http: Request,
    scheduler: Scheduler,
    request: TranscribeRequest,
    options: PostProcessingOptions,
) -> StreamingResponse:
    """The streaming response, once its first event is ready.

    Raises:
        TheoError: the worker refused or failed the request before its first segment.
        ClientDisconnectedError: the client left before the first segment (the worker
            call is cancelled).
    """
    events = _events(scheduler.transcribe_segments(request), options)
    try:
        first = await cancel_on_disconnect(http, anext(events))
    except BaseException:
        await events.aclose()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            yield _sse(first)
            async for event in events:
                yield _sse(event)
        except asyncio.CancelledError:
            log.info("client_disconnected", request_id=request.request_id)
            raise
        except Exception as exc:  # the response has started: report in the stream
            log.warning("transcript_stream_failed", request_id=request.request_id, error=str(exc))
            message = getattr(exc, "message", str(exc))
            yield _sse({"type": "error", "error": {"type": "server_error", "message": message}})
        finally:
            await events.aclose()

    headers = {"Cache-Control": "no-cache", "X-Request-Id": request.request_id}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
