"""Test-side telephony peers: an RTP sender with network impairments, an AudioSocket
client and a subscriber of ``WS /v1/calls/events``. They speak real UDP, TCP and WebSocket
to a real `theo serve`; the benchmarks use them too."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import websockets

from theo.audio.g711 import pcm16_to_alaw, pcm16_to_ulaw
from theo.telephony.audiosocket import FrameKind, encode_frame, read_frame
from theo.telephony.codecs import codec_for
from theo.telephony.rtp import RtpPacket, build_rtcp_bye, build_rtp, parse_rtp

PTIME_MS = 20
_ENCODERS: dict[str, tuple[int, int, Callable[[npt.NDArray[np.int16]], bytes]]] = {
    # codec: payload type, clock rate, encoder of int16 samples
    "pcmu": (0, 8_000, pcm16_to_ulaw),
    "pcma": (8, 8_000, pcm16_to_alaw),
    "l16": (118, 16_000, lambda s: s.astype(">i2").tobytes()),
}


@dataclass
class Impairments:
    """What the network does to a stream (seeded, so a run is reproducible)."""

    loss: float = 0.0
    """Share of packets never sent."""
    reorder: float = 0.0
    """Share of packets delayed past their successors, by up to ``reorder_window_ms``."""
    reorder_window_ms: float = 40.0
    duplicate: float = 0.0
    """Share of packets sent twice."""
    seed: int = 7


@dataclass
class SendReport:
    """What the sender did to the stream, to compare with the server's statistics."""

    packets: int = 0
    sent: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    """Packets sent after a packet with a higher sequence number."""


def rtp_packets(
    samples: npt.NDArray[np.int16],
    codec: str,
    *,
    ssrc: int,
    first_sequence: int = 65_500,
    first_timestamp: int = 4_294_960_000,
) -> list[bytes]:
    """``samples`` (at the codec's rate) as 20 ms RTP packets; sequence numbers and
    timestamps start near their wrap-around, so every call crosses it."""
    payload_type, rate, encoder = _ENCODERS[codec]
    per_packet = rate * PTIME_MS // 1000
    packets = []
    for index, start in enumerate(range(0, len(samples), per_packet)):
        chunk = samples[start : start + per_packet]
        if len(chunk) < per_packet:
            chunk = np.pad(chunk, (0, per_packet - len(chunk)))
        packets.append(
            build_rtp(
                payload_type=payload_type,
                sequence=(first_sequence + index) & 0xFFFF,
                timestamp=(first_timestamp + index * per_packet) & 0xFFFFFFFF,
                ssrc=ssrc,
                payload=encoder(chunk),
                marker=index == 0,
            )
        )
    return packets


def schedule(
    packets: list[bytes], impairments: Impairments | None = None
) -> tuple[list[tuple[float, bytes]], SendReport]:
    """When each datagram leaves (seconds from the start) after the impairments."""
    rng = random.Random(impairments.seed if impairments else 0)
    plan: list[tuple[float, int, bytes]] = []
    report = SendReport(packets=len(packets))
    for index, packet in enumerate(packets):
        at = index * PTIME_MS / 1000
        if impairments is None:
            plan.append((at, index, packet))
            continue
        if rng.random() < impairments.loss:
            report.dropped += 1
            continue
        if rng.random() < impairments.reorder:
            at += rng.uniform(PTIME_MS + 1, impairments.reorder_window_ms) / 1000
        plan.append((at, index, packet))
        if rng.random() < impairments.duplicate:
            report.duplicated += 1
            plan.append((at + 0.005, index, packet))
    plan.sort(key=lambda item: item[0])
    highest = -1
    seen: set[int] = set()
    for _, index, _ in plan:
        if index in seen:
            continue  # a duplicate
        seen.add(index)
        if index < highest:
            report.reordered += 1
        highest = max(highest, index)
    report.sent = len(plan)
    return [(at, packet) for at, _, packet in plan], report


async def send_datagrams(
    host: str, port: int, plan: list[tuple[float, bytes]], *, pace: float = 1.0
) -> None:
    """Send each datagram at its time (``pace`` x real time) from one UDP socket."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        started = time.monotonic()
        for at, datagram in plan:
            delay = started + at / pace - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sock.sendto(datagram, (host, port))


async def send_rtp_call(
    host: str,
    port: int,
    samples: npt.NDArray[np.int16],
    codec: str,
    *,
    ssrc: int,
    impairments: Impairments | None = None,
    bye: bool = False,
    pace: float = 1.0,
) -> SendReport:
    """One call: the audio as paced RTP (impaired if asked), then an RTCP BYE if asked."""
    plan, report = schedule(rtp_packets(samples, codec, ssrc=ssrc), impairments)
    if bye:
        last = plan[-1][0] if plan else 0.0
        plan.append((last + 0.1, build_rtcp_bye([ssrc])))
    await send_datagrams(host, port, plan, pace=pace)
    return report


async def audiosocket_call(
    host: str,
    port: int,
    call_id: uuid.UUID,
    samples_8k: npt.NDArray[np.int16],
    *,
    pace: float = 1.0,
    hangup: bool = True,
) -> None:
    """One AudioSocket call: the UUID frame, 20 ms slin frames at ``pace``, a hangup."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(encode_frame(FrameKind.UUID, call_id.bytes))
        per_frame = 8_000 * PTIME_MS // 1000
        started = time.monotonic()
        for index, start in enumerate(range(0, len(samples_8k), per_frame)):
            chunk = samples_8k[start : start + per_frame].astype("<i2").tobytes()
            writer.write(encode_frame(FrameKind.AUDIO, chunk))
            await writer.drain()
            delay = started + (index + 1) * PTIME_MS / 1000 / pace - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if hangup:
            writer.write(encode_frame(FrameKind.HANGUP))
            await writer.drain()
        await asyncio.wait_for(reader.read(), timeout=60)  # the server closes after the call
    finally:
        writer.close()


@dataclass
class CallEvents:
    """Events of ``WS /v1/calls/events``, grouped by call."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def of_call(self, call_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("call_id") == call_id]

    def started(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == "call.started"]

    def ended(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == "call.ended"]

    def finals(self, call_id: str) -> list[str]:
        return [e["text"] for e in self.of_call(call_id) if e["type"] == "transcript.final"]


class CallWatcher:
    """A subscriber of ``WS /v1/calls/events`` collecting events in the background."""

    def __init__(self, base_url: str, call_id: str | None = None) -> None:
        self.url = base_url.replace("http://", "ws://") + "/v1/calls/events"
        if call_id:
            self.url += f"?call_id={call_id}"
        self.log = CallEvents()
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._ws: websockets.ClientConnection | None = None

    async def __aenter__(self) -> CallWatcher:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._connected.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        async with websockets.connect(self.url, max_size=None) as ws:
            self._ws = ws
            self._connected.set()
            async for message in ws:
                self.log.events.append(json.loads(message))

    async def send(self, **command: Any) -> None:
        """Send a command (``tts.speak`` / ``tts.cancel``) to the server."""
        assert self._ws is not None
        await self._ws.send(json.dumps(command))

    async def wait_for(
        self,
        predicate: Callable[[CallEvents], bool],
        timeout: float = 60.0,  # noqa: ASYNC109
    ) -> CallEvents:
        """Wait until ``predicate(events)`` holds."""
        deadline = time.monotonic() + timeout
        while not predicate(self.log):
            if time.monotonic() > deadline:
                kinds = [(e["type"], e.get("call_id")) for e in self.log.events]
                raise AssertionError(f"timed out after {timeout}s; events: {kinds}")
            await asyncio.sleep(0.05)
        return self.log

    async def wait_ended(self, count: int, timeout: float = 60.0) -> CallEvents:  # noqa: ASYNC109
        """Wait for ``count`` ``call.ended`` events."""
        return await self.wait_for(lambda log: len(log.ended()) >= count, timeout)


class RtpPhone(asyncio.DatagramProtocol):
    """A phone on one UDP socket: it sends a continuous RTP stream (what it is told to say,
    silence otherwise) and records what Theo sends back to it (symmetric RTP)."""

    def __init__(self, codec: str, ssrc: int) -> None:
        self.codec = codec
        self.ssrc = ssrc
        self.rate = _ENCODERS[codec][1]
        self.received: list[tuple[float, RtpPacket]] = []
        """Each packet that came back and when (monotonic)."""
        self._to_say: list[npt.NDArray[np.int16]] = []
        self._pending = np.zeros(0, np.int16)
        self._transport: asyncio.DatagramTransport | None = None
        self._sender: asyncio.Task[None] | None = None

    @classmethod
    async def call(cls, host: str, port: int, codec: str, ssrc: int) -> RtpPhone:
        """Dial: bind a socket and start streaming (silence until told to say something)."""
        loop = asyncio.get_running_loop()
        phone = cls(codec, ssrc)
        await loop.create_datagram_endpoint(lambda: phone, remote_addr=(host, port))
        phone._sender = asyncio.create_task(phone._stream())
        return phone

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.received.append((time.monotonic(), parse_rtp(data)))

    def say(self, samples: npt.NDArray[np.int16]) -> None:
        """Speak ``samples`` (at the codec's rate) after what is still being said."""
        self._to_say.append(samples)

    @property
    def saying(self) -> bool:
        """Whether something is still being said."""
        return bool(self._to_say) or self._pending.size > 0

    def heard(self) -> npt.NDArray[np.int16]:
        """What came back, decoded, in sequence order (as received: no reordering here)."""
        audio = b""
        for _, packet in self.received:
            codec = codec_for(packet.payload_type)
            assert codec is not None, packet.payload_type
            audio += codec.decode(packet.payload)
        return np.frombuffer(audio, dtype="<i2")

    async def hang_up(self) -> None:
        """Stop streaming and send an RTCP BYE."""
        assert self._sender is not None and self._transport is not None
        self._sender.cancel()
        await asyncio.gather(self._sender, return_exceptions=True)
        self._transport.sendto(build_rtcp_bye([self.ssrc]))
        await asyncio.sleep(0.05)
        self._transport.close()

    async def _stream(self) -> None:
        assert self._transport is not None
        payload_type, rate, encoder = _ENCODERS[self.codec]
        per_packet = rate * PTIME_MS // 1000
        started, index = time.monotonic(), 0
        while True:
            if self._pending.size < per_packet and self._to_say:
                self._pending = np.concatenate([self._pending, self._to_say.pop(0)])
            chunk, self._pending = self._pending[:per_packet], self._pending[per_packet:]
            chunk = np.pad(chunk, (0, per_packet - chunk.size))
            packet = build_rtp(
                payload_type=payload_type,
                sequence=index & 0xFFFF,
                timestamp=(index * per_packet) & 0xFFFFFFFF,
                ssrc=self.ssrc,
                payload=encoder(chunk),
                marker=index == 0,
            )
            self._transport.sendto(packet)
            index += 1
            await asyncio.sleep(max(0.0, started + index * PTIME_MS / 1000 - time.monotonic()))


class AudioSocketPhone:
    """An Asterisk-like AudioSocket peer: a continuous 20 ms slin stream (speech when told,
    silence otherwise) and a record of the frames Theo sends back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.received: list[tuple[float, int, bytes]] = []
        """Each frame that came back: when (monotonic), kind, payload."""
        self._to_say: list[npt.NDArray[np.int16]] = []
        self._pending = np.zeros(0, np.int16)
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def call(cls, host: str, port: int, call_id: uuid.UUID) -> AudioSocketPhone:
        """Connect, name the call and start streaming silence."""
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(encode_frame(FrameKind.UUID, call_id.bytes))
        phone = cls(reader, writer)
        phone._tasks = [asyncio.create_task(phone._stream()), asyncio.create_task(phone._read())]
        return phone

    def say(self, samples_8k: npt.NDArray[np.int16]) -> None:
        """Speak ``samples_8k`` after what is still being said."""
        self._to_say.append(samples_8k)

    @property
    def saying(self) -> bool:
        return bool(self._to_say) or self._pending.size > 0

    def heard(self) -> npt.NDArray[np.int16]:
        """The audio frames that came back, as samples."""
        audio = b"".join(p for _, kind, p in self.received if kind == FrameKind.AUDIO)
        return np.frombuffer(audio, dtype="<i2")

    async def hang_up(self) -> None:
        """Send a hangup frame and close."""
        self._tasks[0].cancel()
        await asyncio.gather(self._tasks[0], return_exceptions=True)
        self._writer.write(encode_frame(FrameKind.HANGUP))
        await self._writer.drain()
        await asyncio.wait_for(self._tasks[1], 30)  # the server closes after the call
        self._writer.close()

    async def _stream(self) -> None:
        per_frame = 8_000 * PTIME_MS // 1000
        started, index = time.monotonic(), 0
        while True:
            if self._pending.size < per_frame and self._to_say:
                self._pending = np.concatenate([self._pending, self._to_say.pop(0)])
            chunk, self._pending = self._pending[:per_frame], self._pending[per_frame:]
            chunk = np.pad(chunk, (0, per_frame - chunk.size))
            self._writer.write(encode_frame(FrameKind.AUDIO, chunk.astype("<i2").tobytes()))
            await self._writer.drain()
            index += 1
            await asyncio.sleep(max(0.0, started + index * PTIME_MS / 1000 - time.monotonic()))

    async def _read(self) -> None:
        while (frame := await read_frame(self._reader, timeout_s=60)) is not None:
            self.received.append((time.monotonic(), frame.kind, frame.payload))


def spacing_ms(arrivals: list[float]) -> tuple[float, float]:
    """The median gap between arrivals and the whole span, in milliseconds."""
    gaps = np.diff(np.asarray(arrivals)) * 1000
    return float(np.median(gaps)), float((arrivals[-1] - arrivals[0]) * 1000)
