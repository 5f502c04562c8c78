"""RTP over UDP (RFC 3550): each stream (source address + SSRC) is a phone call.

A datagram is parsed, its audio packets go through the stream's jitter buffer and are
decoded to PCM16 (gaps concealed with silence, so the audio clock never drifts), and the
audio is fed to the call without waiting: a datagram callback never blocks the loop.
RTCP arriving on the same port (RFC 5761) is recognised; a BYE ends its streams. RFC 4733
telephone events become ``call.dtmf``. A sweep ends streams that went quiet, and forgets
refused ones, so a flood of random SSRCs costs nothing once it stops. Spoken replies go
back to the stream's source address and port (symmetric RTP) in its codec, paced by the
call's playout.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from typing import Any

from theo.config import TelephonySettings
from theo.logging import get_logger
from theo.server.calls.call import Call, CallEndReason, CallTransport
from theo.server.calls.playout import FrameSink
from theo.server.calls.registry import CallRegistry
from theo.server.metrics import Metrics
from theo.telephony.codecs import RtpCodec, codec_for
from theo.telephony.dtmf import DtmfDetector
from theo.telephony.jitter import Concealed, JitterBuffer
from theo.telephony.rtp import (
    MalformedPacketError,
    RtpPacket,
    is_rtcp,
    parse_rtp,
    rtcp_bye_ssrcs,
)
from theo.telephony.rtp_sender import RtpSender

log = get_logger("telephony.rtp")

StreamKey = tuple[str, int, int]
"""Source host, source port, SSRC."""

_SWEEP_INTERVAL_S = 0.25
_JITTER_SAMPLE_INTERVAL_S = 1.0
_MAX_REFUSED_REMEMBERED = 4_096
_COUNTED_STATS = ("lost", "late", "duplicate", "reordered")


class RtpStream:
    """The receive state of one RTP call: jitter buffer, codec, DTMF, counters."""

    def __init__(self, key: StreamKey, codec: RtpCodec, settings: TelephonySettings) -> None:
        self.key = key
        self.codec = codec
        self._settings = settings
        self.jitter = JitterBuffer(codec.clock_rate, depth_ms=settings.jitter_buffer_ms)
        self._dtmf = DtmfDetector()
        self.unknown_payload = 0
        self.dtmf_packets = 0
        self.call: Call | None = None
        """The call, once opened (audio that arrives earlier waits in ``pending``)."""
        self.pending: list[bytes] = []
        self.last_seen = 0.0
        self.ended: CallEndReason | None = None
        """Set when the stream ended before its call was open."""
        self._reported = dict.fromkeys(_COUNTED_STATS, 0)

    def receive(self, packet: RtpPacket, now: float) -> tuple[list[bytes], str | None]:
        """PCM16 chunks ready to play, and a DTMF key pressed, for one packet."""
        self.last_seen = now
        if packet.payload_type == self._settings.dtmf_payload_type:
            self.dtmf_packets += 1
            return [], self._dtmf.feed(packet)
        codec = codec_for(packet.payload_type, l16_payload_type=self._settings.l16_payload_type)
        if codec is None or codec.clock_rate != self.codec.clock_rate:
            self.unknown_payload += 1
            return [], None
        return self._decode(self.jitter.push(packet, now)), None

    def flush(self) -> list[bytes]:
        """The audio still held by the jitter buffer (the call is ending)."""
        return self._decode(self.jitter.flush())

    def statistics(self) -> dict[str, Any]:
        """Jitter-buffer statistics and payload counters."""
        return {
            **self.jitter.stats.as_dict(),
            "unknown_payload": self.unknown_payload,
            "dtmf_packets": self.dtmf_packets,
        }

    def unreported(self) -> dict[str, int]:
        """Counts of lost, late, duplicate and reordered packets since the last call."""
        stats = self.jitter.stats.as_dict()
        delta = {name: int(stats[name]) - self._reported[name] for name in _COUNTED_STATS}
        self._reported = {name: int(stats[name]) for name in _COUNTED_STATS}
        return delta

    def _decode(self, items: list[Any]) -> list[bytes]:
        chunks: list[bytes] = []
        l16 = self._settings.l16_payload_type
        for item in items:
            if isinstance(item, Concealed):
                chunks.append(self.codec.silence(item.samples))
                continue
            codec = codec_for(item.packet.payload_type, l16_payload_type=l16) or self.codec
            chunks.append(codec.decode(item.packet.payload))
        return chunks


class RtpListener(asyncio.DatagramProtocol):
    """The UDP endpoint of ``--rtp-port``: streams in, calls out."""

    def __init__(
        self, registry: CallRegistry, settings: TelephonySettings, metrics: Metrics
    ) -> None:
        self._registry = registry
        self._settings = settings
        self._metrics = metrics
        self._streams: dict[StreamKey, RtpStream] = {}
        self._refused: OrderedDict[StreamKey, float] = OrderedDict()
        self._transport: asyncio.DatagramTransport | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._opening: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()
        self.refused_total = 0

    @property
    def port(self) -> int:
        """The bound UDP port."""
        assert self._transport is not None
        return int(self._transport.get_extra_info("sockname")[1])

    async def start(self, host: str, port: int) -> None:
        """Bind and start sweeping idle streams."""
        transport, _ = await self._loop.create_datagram_endpoint(
            lambda: self, local_addr=(host, port)
        )
        self._transport = transport
        self._sweeper = asyncio.create_task(self._sweep(), name="rtp-sweep")
        log.info("rtp_listening", host=host, port=self.port)

    async def stop(self) -> None:
        """Stop receiving; the registry ends the calls."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._transport is not None:
            self._transport.close()
        for task in list(self._opening):
            task.cancel()
        await asyncio.gather(*self._opening, return_exceptions=True)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """One datagram: RTCP (BYE ends streams) or an RTP packet of a stream."""
        host, port = str(addr[0]), int(addr[1])
        try:
            if is_rtcp(data):
                self._on_rtcp(host, data)
                return
            packet = parse_rtp(data)
        except MalformedPacketError as exc:
            self._metrics.rtp_packets("malformed")
            log.debug("rtp_malformed", remote=f"{host}:{port}", reason=exc.reason)
            return
        self._metrics.rtp_packets("received")
        key = (host, port, packet.ssrc)
        now = self._loop.time()
        stream = self._streams.get(key)
        if stream is None:
            stream = self._new_stream(key, packet, now)
            if stream is None:
                return
        chunks, digit = stream.receive(packet, now)
        if digit is not None and stream.call is not None:
            stream.call.dtmf(digit)
        if stream.call is None:
            stream.pending.extend(chunks)
            return
        stream.call.touch()
        for chunk in chunks:
            stream.call.feed(chunk)

    def _new_stream(self, key: StreamKey, packet: RtpPacket, now: float) -> RtpStream | None:
        if key in self._refused:
            self._refused[key] = now
            self._refused.move_to_end(key)
            return None
        codec = codec_for(packet.payload_type, l16_payload_type=self._settings.l16_payload_type)
        if codec is None:
            # A stream starts with audio; a stray telephone event or comfort noise does not.
            self._metrics.rtp_packets("unknown_payload")
            return None
        if len(self._streams) >= self._settings.max_calls:
            self._refuse(key, now, "too many calls")
            return None
        stream = RtpStream(key, codec, self._settings)
        stream.last_seen = now
        self._streams[key] = stream
        task = asyncio.create_task(self._open(stream), name=f"rtp-open-{key}")
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)
        return stream

    async def _open(self, stream: RtpStream) -> None:
        host, port, ssrc = stream.key
        call = await self._registry.open(
            call_id=f"call_{uuid.uuid4().hex[:16]}",
            transport=CallTransport.RTP,
            remote=f"{host}:{port}",
            codec=stream.codec.name,
            sample_rate=stream.codec.clock_rate,
            statistics=stream.statistics,
            send_frame=self._sender_to(host, port, RtpSender(stream.codec)),
        )
        if call is None:
            self._streams.pop(stream.key, None)
            self._remember_refused(stream.key, stream.last_seen)
            return
        stream.call = call
        log.info("rtp_stream", call_id=call.call_id, ssrc=ssrc, codec=stream.codec.name)
        for chunk in stream.pending:
            call.feed(chunk)
        stream.pending.clear()
        if stream.ended is not None:  # BYE or idle while the call was opening
            self._finish(stream, call, stream.ended)

    def _sender_to(self, host: str, port: int, sender: RtpSender) -> FrameSink:
        def send(pcm16: bytes, talkspurt_start: bool) -> None:
            if self._transport is not None and not self._transport.is_closing():
                self._transport.sendto(sender.packet(pcm16, talkspurt_start), (host, port))

        return send

    def _refuse(self, key: StreamKey, now: float, why: str) -> None:
        host, port, _ = key
        self._registry.refuse(
            f"call_{uuid.uuid4().hex[:16]}", CallTransport.RTP, f"{host}:{port}", why
        )
        self._remember_refused(key, now)

    def _remember_refused(self, key: StreamKey, now: float) -> None:
        self.refused_total += 1
        self._refused[key] = now
        while len(self._refused) > _MAX_REFUSED_REMEMBERED:
            self._refused.popitem(last=False)

    def _on_rtcp(self, host: str, data: bytes) -> None:
        for ssrc in rtcp_bye_ssrcs(data):
            for key in [k for k in self._streams if k[0] == host and k[2] == ssrc]:
                self._end(key, CallEndReason.BYE)

    def _end(self, key: StreamKey, reason: CallEndReason) -> None:
        stream = self._streams.pop(key, None)
        if stream is None:
            return
        self._report(stream)
        stream.ended = reason
        if stream.call is not None:  # else still opening: _open finishes it
            self._finish(stream, stream.call, reason)

    def _finish(self, stream: RtpStream, call: Call, reason: CallEndReason) -> None:
        for chunk in stream.flush():
            call.feed(chunk)
        self._registry.end(call, reason)

    def _report(self, stream: RtpStream) -> None:
        for outcome, count in stream.unreported().items():
            self._metrics.rtp_packets(outcome, count)

    async def _sweep(self) -> None:
        idle_s = self._settings.idle_timeout_ms / 1000
        next_jitter_sample = self._loop.time()
        while True:
            await asyncio.sleep(_SWEEP_INTERVAL_S)
            now = self._loop.time()
            for key, stream in list(self._streams.items()):
                if now - stream.last_seen >= idle_s:
                    self._end(key, CallEndReason.IDLE_TIMEOUT)
                else:
                    self._report(stream)
            if now >= next_jitter_sample:
                next_jitter_sample = now + _JITTER_SAMPLE_INTERVAL_S
                for stream in self._streams.values():
                    self._metrics.rtp_jitter(stream.jitter.stats.jitter_ms / 1000)
            while self._refused:
                key, seen = next(iter(self._refused.items()))
                if now - seen < idle_s:
                    break
                del self._refused[key]
