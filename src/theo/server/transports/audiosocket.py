"""Asterisk AudioSocket over TCP: each connection is one phone call.

The first frame names the call (its 16-byte UUID); signed-linear audio frames follow
(kind 0x10 is 8 kHz; the newer kinds 0x11-0x18 carry other rates), until a hangup frame
or the connection closing. Audio is pushed with backpressure: a call whose session falls
behind stops reading its socket, and TCP slows the sender. A malformed frame, an unknown
kind, audio before the UUID or a frame that stalls ends that call with a log line, never
the server. Spoken replies go back as audio frames of the call's own kind and rate, paced
by the call's playout.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from theo.config import TelephonySettings
from theo.logging import get_logger
from theo.server.calls.call import Call, CallEndReason, CallTransport
from theo.server.calls.registry import CallRegistry
from theo.telephony.audiosocket import (
    SLIN_RATES,
    Frame,
    FrameKind,
    MalformedFrameError,
    encode_frame,
    read_frame,
    uuid_from_payload,
)

log = get_logger("telephony.audiosocket")

_CLOSE_TIMEOUT_S = 2.0


class ProtocolError(Exception):
    """The peer broke the AudioSocket protocol; the call ends with reason ``error``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AudioSocketConnection:
    """One PBX connection: reads its frames and feeds its call."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        registry: CallRegistry,
        settings: TelephonySettings,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._registry = registry
        self._timeout_s = settings.idle_timeout_ms / 1000
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.remote = f"{peer[0]}:{peer[1]}"
        self.call_id: str | None = None
        self.call: Call | None = None
        self._rate: int | None = None
        self._reply_kind = FrameKind.AUDIO.value
        self._frames = 0
        self._audio_bytes = 0

    def statistics(self) -> dict[str, Any]:
        """Frames and audio received."""
        return {"frames_received": self._frames, "audio_bytes": self._audio_bytes}

    async def serve(self) -> None:
        """Serve the connection until the call ends; then close it."""
        reason = CallEndReason.ERROR
        try:
            reason = await self._read_frames()
        except ProtocolError as exc:
            log.warning(
                "audiosocket_protocol_error",
                remote=self.remote,
                call_id=self.call_id,
                reason=exc.reason,
            )
        except MalformedFrameError as exc:
            log.warning(
                "audiosocket_malformed_frame",
                remote=self.remote,
                call_id=self.call_id,
                reason=exc.reason,
            )
        except (TimeoutError, ConnectionError):
            reason = CallEndReason.IDLE_TIMEOUT
            log.info("audiosocket_idle", remote=self.remote, call_id=self.call_id)
        finally:
            if self.call is not None:
                await self.call.end(reason)
            await self._close()

    async def _read_frames(self) -> CallEndReason:
        while True:
            frame = await read_frame(self._reader, timeout_s=self._timeout_s)
            if frame is None:
                return CallEndReason.HANGUP  # the connection closed
            self._frames += 1
            if self.call is not None:
                self.call.touch()
            outcome = await self._handle(frame)
            if outcome is not None:
                return outcome
            if self.call is not None and self.call.ending:
                return CallEndReason.ERROR  # ended on its own; its reason was published

    async def _handle(self, frame: Frame) -> CallEndReason | None:
        kind = frame.kind
        if kind == FrameKind.UUID:
            if self.call_id is not None:
                raise ProtocolError("second_uuid")
            self.call_id = str(uuid_from_payload(frame.payload))
            return None
        if kind == FrameKind.HANGUP:
            return CallEndReason.HANGUP
        if kind == FrameKind.ERROR:
            code = frame.payload[:1].hex() or "none"
            log.warning(
                "audiosocket_peer_error", remote=self.remote, call_id=self.call_id, code=code
            )
            return CallEndReason.ERROR
        if self.call_id is None:
            raise ProtocolError("frame_before_uuid")
        if kind == FrameKind.DTMF:
            digit = frame.payload[:1].decode("ascii", errors="replace")
            if self.call is not None and digit:
                self.call.dtmf(digit)
            return None
        rate = SLIN_RATES.get(kind)
        if rate is None:
            raise ProtocolError(f"unknown_kind_{kind:#04x}")
        if len(frame.payload) % 2:
            raise ProtocolError("odd_audio_length")
        return await self._audio(frame.payload, rate)

    async def _audio(self, pcm16: bytes, rate: int) -> CallEndReason | None:
        self._audio_bytes += len(pcm16)
        if self.call is None:
            assert self.call_id is not None
            self._rate = rate
            self._reply_kind = next(k for k, r in SLIN_RATES.items() if r == rate)
            self.call = await self._registry.open(
                call_id=self.call_id,
                transport=CallTransport.AUDIOSOCKET,
                remote=self.remote,
                codec="slin" if rate == SLIN_RATES[FrameKind.AUDIO] else f"slin{rate // 1000}",
                sample_rate=rate,
                statistics=self.statistics,
                send_frame=self._send_audio,
            )
            if self.call is None:
                return CallEndReason.REFUSED  # counted and published by the registry
        elif rate != self._rate:
            self._rate = rate
            await self.call.session.configure({"input_sample_rate": rate})
        await self.call.push(pcm16)
        return None

    def _send_audio(self, pcm16: bytes, talkspurt_start: bool) -> None:
        """One 20 ms frame of reply audio, of the kind the call's audio arrives in."""
        if self._writer.is_closing():
            return
        self._writer.write(encode_frame(self._reply_kind, pcm16))

    async def _close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.wait_closed(), _CLOSE_TIMEOUT_S)


class AudioSocketServer:
    """The TCP server of ``--audiosocket-port``."""

    def __init__(self, registry: CallRegistry, settings: TelephonySettings) -> None:
        self._registry = registry
        self._settings = settings
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        """Bind and accept connections."""
        self._server = await asyncio.start_server(self._accept, host, port)
        log.info("audiosocket_listening", host=host, port=self.port)

    def stop_accepting(self) -> None:
        """Refuse new connections (the open ones go on)."""
        if self._server is not None:
            self._server.close()

    async def stop(self) -> None:
        """Stop accepting and close every connection (their calls end)."""
        self.stop_accepting()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = AudioSocketConnection(reader, writer, self._registry, self._settings)
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await connection.serve()
        finally:
            self._connections.discard(task)
