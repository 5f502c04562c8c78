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
from typing import Any

import numpy as np
import numpy.typing as npt
import websockets

from theo.audio.g711 import pcm16_to_alaw, pcm16_to_ulaw
from theo.telephony.audiosocket import FrameKind, encode_frame
from theo.telephony.rtp import build_rtcp_bye, build_rtp

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
            self._connected.set()
            async for message in ws:
                self.log.events.append(json.loads(message))

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
