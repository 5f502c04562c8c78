"""Relay a speech stream to a client: encode each chunk off the event loop, in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable

from theo.server.speech.encoders import SpeechEncoder
from theo.workers.tts_client import SpeechStream


class OffLoopEncoder:
    """Runs a :class:`SpeechEncoder` on a thread, one call at a time (inline if it is a copy).

    If the response is abandoned while a call runs, the encoder is released only once
    that call has returned, so it is never closed under a running encode.
    """

    def __init__(self, encoder: SpeechEncoder) -> None:
        self._encoder = encoder
        self._busy: asyncio.Future[bytes] | None = None

    async def _run(self, call: Callable[[], bytes]) -> bytes:
        if self._encoder.inline:
            return call()
        self._busy = asyncio.get_running_loop().run_in_executor(None, call)
        # Shielded: a cancelled request must not make the call look finished while it runs.
        return await asyncio.shield(self._busy)

    async def encode(self, pcm16: bytes) -> bytes:
        """Encode one chunk of PCM16."""
        return await self._run(lambda: self._encoder.encode(pcm16))

    async def finish(self) -> bytes:
        """Flush the encoder: the last bytes of the stream."""
        return await self._run(self._encoder.finish)

    def close(self) -> None:
        """Release the encoder now, or as soon as the call in progress returns."""
        busy = self._busy
        if busy is not None and not busy.done():
            busy.add_done_callback(lambda _: self._encoder.close())
        else:
            self._encoder.close()


async def encoded_audio(
    stream: SpeechStream, encoder: SpeechEncoder
) -> AsyncGenerator[bytes, None]:
    """The encoded bytes of every chunk as it arrives, then the encoder's last bytes.

    Empty pieces are skipped. Closing the iterator early releases the encoder; the caller
    closes the stream.
    """
    off_loop = OffLoopEncoder(encoder)
    try:
        async for chunk in stream:
            data = await off_loop.encode(chunk.pcm16)
            if data:
                yield data
        tail = await off_loop.finish()
        if tail:
            yield tail
    finally:
        off_loop.close()
