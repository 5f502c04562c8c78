"""Telephony benchmark: RTP ingest cost, phone calls that keep up, and G.711's cost in WER.

One run of this script prints three tables:

1. **ingest cost per packet** (no server): ``--packets`` 20 ms PCMU packets (the 8 kHz clip
   tiled) with 10 % of them reordered within 40 ms and 3 % duplicated (the test sender's
   seeded ``schedule``), pushed through the receive path of ``theo serve``'s RTP listener:
   ``is_rtcp`` + ``parse_rtp`` + ``RtpStream.receive`` (payload type check,
   ``JitterBuffer.push``, ``RtpCodec.decode`` of what it releases) on the packets' scheduled
   arrival times, one stream, best of ``--repeats``. Against it, the steps alone (parse;
   parse + jitter buffer) and the bare G.711 decodes of the same payloads: Theo's table
   lookup (``ulaw_to_pcm16``; ``RtpCodec.decode`` adds the bytes conversion) and CPython
   3.11's C ``audioop.ulaw2lin`` where it can be imported (gone in 3.13). It prints
   microseconds per datagram, ratios, and the share of one core 1,000 concurrent calls
   (50 packets per second each) would take;
2. **concurrent calls that keep up**: one ``theo serve`` with only ``--model`` (a models
   directory holding one symlink), RTP on a free UDP port, calls ending 1.5 s after their
   last packet. After one untimed warm-up call, for N in 1, 2, 4, 6, 8, ... up to
   ``--max-calls``: N simultaneous PCMU calls of the clip plus 1 s of silence, each from
   its own UDP socket and SSRC, paced at real time on an absolute schedule, while a
   ``WS /v1/calls/events`` subscriber stamps every event's arrival. A call **keeps up**
   when it was served (``call.started``, ``session.closed``), every ``vad.speech_start``
   got its ``transcript.final``, ``frames_dropped`` is 0 and its last final arrived at most
   ``--drain-limit`` (2.0) seconds after its last packet was sent. The **final delay** of
   an utterance is the final's arrival minus the wall time of its ``end_ms`` (the end of
   its last word on the call's audio clock, placed on the wall clock by the send time of
   the call's first packet); **after VAD end** measures from ``vad.speech_end`` instead (the
   end of the last speech window, like ``streaming.py``'s "final"). The ladder stops at the
   first N where a call does not keep up;
3. **WER of G.711 against PCM16**: the clip (+1 s of silence) one path at a time on the
   same server: PCM16 8 kHz over ``WS /v1/realtime`` (``session.configure
   input_sample_rate``), mu-law over the WebSocket (``input_audio_format: g711_ulaw``),
   PCMU and PCMA over RTP, and PCMU over RTP with 5 % loss, 10 % reordered within 40 ms and
   3 % duplicates; each row's WER against the reference and its difference, in points,
   from the PCM16 row. RTP rows also show the server's packet statistics. Three batch rows
   follow (``POST /v1/audio/transcriptions`` of the clip as PCM16, and after a mu-law and
   an A-law round trip): the codecs' effect on one decode of the whole file, without the
   streaming path's timing-dependent segment decodes.

Usage (from the repository root)::

    .venv/bin/python benchmarks/telephony.py                  # ~5.5 minutes on 2 cores
    .venv/bin/python benchmarks/telephony.py --quick          # ~2.5 minutes: smoke run
    .venv/bin/python benchmarks/telephony.py --max-calls 12 --theo-home ~/.theo

With a temporary ``THEO_HOME`` the model is pulled there (``theo pull``) reusing the test
suite's download cache (``.theo-test-cache/downloads``, ``HF_HUB_OFFLINE=1``, as
``tests/helpers/server.py``'s ``pull`` does) unless those variables are set, and the
server reuses the NeMo ITN grammars in ``.theo-test-cache/itn``. Progress goes to stderr,
the tables to stdout, the server's output to ``theo.log`` in the temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import websockets
from harness import log, model_links, percentile
from streaming import cpu_seconds, machine_busy_seconds, print_table, wait_idle

from tests.helpers.audio import read_wav, wav_bytes
from tests.helpers.realtime import run_session, ws_url
from tests.helpers.server import TEST_CACHE, RunningServer, serving
from tests.helpers.telephony import Impairments, SendReport, rtp_packets, schedule
from tests.helpers.wer import wer
from theo.audio.g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
from theo.config import TelephonySettings
from theo.server.transports.rtp import RtpStream
from theo.telephony.codecs import PCMU
from theo.telephony.jitter import JitterBuffer
from theo.telephony.rtp import is_rtcp, parse_rtp

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "audio"
DEFAULT_CLIP = FIXTURES / "en_librivox_8k.wav"
DEFAULT_REFERENCE = FIXTURES / "en_librivox.txt"
DEFAULT_MODEL = "faster-whisper-tiny.en"
RATE = 8_000
PACKETS_PER_SECOND = 50  # 20 ms packets
CALLS_FOR_SHARE = 1_000
IDLE_TIMEOUT_MS = 1_500
TAIL_SILENCE_S = 1.0
WARMUP_SECONDS = 6.0
INGEST_IMPAIRMENTS = Impairments(reorder=0.10, reorder_window_ms=40, duplicate=0.03, seed=11)
LOSSY_IMPAIRMENTS = Impairments(loss=0.05, reorder=0.10, reorder_window_ms=40, duplicate=0.03)
STAT_NAMES = ("received", "lost", "late", "duplicate", "reordered", "jitter_ms", "frames_dropped")


# --------------------------------------------------------------------------- table 1


@dataclass
class IngestRow:
    name: str
    seconds: float
    count: int

    @property
    def us_per_packet(self) -> float:
        return self.seconds / self.count * 1e6


def best_of(repeats: int, run: Callable[[], None]) -> float:
    """The fastest of ``repeats`` timed calls of ``run``, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def tiled(samples: npt.NDArray[np.int16], count: int) -> npt.NDArray[np.int16]:
    """``samples`` repeated until it fills ``count`` samples."""
    copies = -(-count // len(samples))
    return np.tile(samples, copies)[:count]


def ingest_table(
    clip: npt.NDArray[np.int16], packets: int, repeats: int
) -> tuple[list[IngestRow], dict[str, Any]]:
    """Time the RTP receive path and the bare decodes over the same impaired datagrams."""
    audio = tiled(clip, packets * RATE // PACKETS_PER_SECOND)
    plan, report = schedule(rtp_packets(audio, "pcmu", ssrc=0x5EED5EED), INGEST_IMPAIRMENTS)
    datagrams = [datagram for _, datagram in plan]
    arrivals = [at for at, _ in plan]
    payloads = [parse_rtp(datagram).payload for datagram in datagrams]
    settings = TelephonySettings()
    key = ("127.0.0.1", 40_000, 0x5EED5EED)
    last_stream: list[RtpStream] = []

    def full() -> None:
        stream = RtpStream(key, PCMU, settings)
        for datagram, at in zip(datagrams, arrivals, strict=True):
            if is_rtcp(datagram):
                continue
            stream.receive(parse_rtp(datagram), at)
        stream.flush()
        last_stream[:] = [stream]

    def parse_and_push() -> None:
        jitter = JitterBuffer(RATE, depth_ms=settings.jitter_buffer_ms)
        for datagram, at in zip(datagrams, arrivals, strict=True):
            jitter.push(parse_rtp(datagram), at)

    def parse_only() -> None:
        for datagram in datagrams:
            parse_rtp(datagram)

    def table_decode() -> None:
        for payload in payloads:
            ulaw_to_pcm16(payload)

    def codec_decode() -> None:
        for payload in payloads:
            PCMU.decode(payload)

    count = len(datagrams)
    rows = [
        IngestRow("(a) full ingest: parse_rtp + JitterBuffer.push + decode", 0.0, count),
        IngestRow("    parse_rtp alone", 0.0, count),
        IngestRow("    parse_rtp + JitterBuffer.push", 0.0, count),
        IngestRow("(b) G.711 decode alone: ulaw_to_pcm16 (numpy table)", 0.0, count),
        IngestRow("    RtpCodec.decode (table + .tobytes())", 0.0, count),
    ]
    for row, run in zip(
        rows, (full, parse_only, parse_and_push, table_decode, codec_decode), strict=True
    ):
        run()  # warm caches and allocators once, untimed
        row.seconds = best_of(repeats, run)
    identical: bool | None = None
    ulaw2lin: Callable[[bytes, int], bytes] | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop  # noqa: PLC0415 - optional, deprecated, gone in Python 3.13

        ulaw2lin = audioop.ulaw2lin
    except ImportError:
        pass
    if ulaw2lin is not None:

        def c_decode() -> None:
            for payload in payloads:
                ulaw2lin(payload, 2)

        c_decode()
        rows.append(
            IngestRow("(c) audioop.ulaw2lin (CPython C)", best_of(repeats, c_decode), count)
        )
        identical = all(
            ulaw2lin(p, 2) == ulaw_to_pcm16(p).astype("<i2").tobytes() for p in payloads[:2000]
        )
    stats = last_stream[0].statistics() if last_stream else {}
    info = {
        "datagrams": count,
        "report": report,
        "stats": stats,
        "audioop_identical": identical,
    }
    return rows, info


def print_ingest(rows: list[IngestRow], info: dict[str, Any], repeats: int) -> None:
    report: SendReport = info["report"]
    stats = info["stats"]
    print(
        f"1. ingest cost per packet, no server: {report.packets} PCMU packets of 20 ms "
        f"({report.packets / PACKETS_PER_SECOND:.0f} s of audio), {report.reordered} reordered "
        f"within {INGEST_IMPAIRMENTS.reorder_window_ms:.0f} ms, {report.duplicated} duplicated: "
        f"{info['datagrams']} datagrams, best of {repeats}"
    )
    print(
        "   jitter buffer counted: "
        + ", ".join(f"{name} {stats.get(name, 0)}" for name in ("received", "reordered"))
        + f", duplicate {stats.get('duplicate', 0)}, lost {stats.get('lost', 0)}, "
        f"late {stats.get('late', 0)}"
    )
    by_name = {row.name.strip()[:3]: row for row in rows}
    table = by_name["(b)"].us_per_packet
    c_row = by_name.get("(c)")
    headers = ["path", "us/datagram", "x table decode", "x audioop", "1,000 calls, cores"]
    body = []
    for row in rows:
        us = row.us_per_packet
        body.append(
            [
                row.name,
                f"{us:.2f}",
                f"{us / table:.1f}",
                f"{us / c_row.us_per_packet:.1f}" if c_row else "-",
                f"{us * PACKETS_PER_SECOND * CALLS_FOR_SHARE / 1e6:.3f}",
            ]
        )
    print_table(headers, body)
    full = rows[0].us_per_packet
    share = full * PACKETS_PER_SECOND * CALLS_FOR_SHARE / 1e6
    print(
        f"   {CALLS_FOR_SHARE:,} concurrent calls x {PACKETS_PER_SECOND} packets/s through the "
        f"full ingest path: {share * 100:.1f}% of one core (datagram receive syscalls, the "
        "event loop and the session's own work not included)"
    )
    if info["audioop_identical"] is not None:
        same = "identical" if info["audioop_identical"] else "DIFFERENT"
        print(f"   ulaw_to_pcm16 vs audioop.ulaw2lin on 2,000 payloads: {same} output")
    else:
        print("   audioop is not importable on this Python: row (c) skipped")


# --------------------------------------------------------------------------- server side


class EventLog:
    """A ``WS /v1/calls/events`` subscriber stamping every event's arrival (monotonic)."""

    def __init__(self, base_url: str) -> None:
        self.url = base_url.replace("http://", "ws://") + "/v1/calls/events"
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def __aenter__(self) -> EventLog:
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
                self.events.append((time.monotonic(), json.loads(message)))

    def by_remote(self, kind: str, remote: str) -> dict[str, Any] | None:
        for _, event in self.events:
            if event["type"] == kind and event.get("remote") == remote:
                return event
        return None

    def of_call(self, call_id: str) -> list[tuple[float, dict[str, Any]]]:
        return [(at, e) for at, e in self.events if e.get("call_id") == call_id]

    def ended(self, call_id: str) -> dict[str, Any] | None:
        for _, event in self.of_call(call_id):
            if event["type"] == "call.ended":
                return event
        return None


@dataclass
class SentCall:
    """One RTP call as the sender made it."""

    remote: str
    report: SendReport
    first_sent: float = 0.0
    last_sent: float = 0.0


async def send_call(
    host: str,
    port: int,
    samples: npt.NDArray[np.int16],
    codec: str,
    ssrc: int,
    impairments: Impairments | None = None,
) -> SentCall:
    """Send one paced call from a fresh UDP socket; record its first and last send times."""
    plan, report = schedule(rtp_packets(samples, codec, ssrc=ssrc), impairments)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sent = SentCall(f"127.0.0.1:{sock.getsockname()[1]}", report)
        started = time.monotonic()
        for index, (at, datagram) in enumerate(plan):
            delay = started + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sock.sendto(datagram, (host, port))
            now = time.monotonic()
            if index == 0:
                # Audio time 0 is the first packet's scheduled time (t = 0).
                sent.first_sent = now - at
            sent.last_sent = now
    return sent


@dataclass
class CallResult:
    """What one call got, and whether it kept up."""

    served: bool
    finals: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    final_delays_ms: list[float] = field(default_factory=list)
    vad_delays_ms: list[float] = field(default_factory=list)
    missing_finals: int = 0
    drain_ms: float | None = None
    statistics: dict[str, Any] = field(default_factory=dict)
    closed: bool = False
    wer: float | None = None
    end_reason: str = ""

    @property
    def text(self) -> str:
        return " ".join(str(e.get("text", "")) for _, e in self.finals if e.get("text"))

    def problems(self, drain_limit_ms: float) -> list[str]:
        found: list[str] = []
        if not self.served:
            found.append(f"not served ({self.end_reason or 'no call.started'})")
            return found
        if not self.closed:
            found.append("no session.closed")
        if self.missing_finals:
            found.append(f"{self.missing_finals} utterance(s) without a final")
        if not self.finals:
            found.append("no final")
        dropped = int(self.statistics.get("frames_dropped", 0) or 0)
        if dropped:
            found.append(f"{dropped} frames dropped")
        if self.drain_ms is not None and self.drain_ms > drain_limit_ms:
            found.append(f"last final {self.drain_ms:.0f} ms after the last packet")
        return found


def analyse_call(events: EventLog, sent: SentCall, reference: str) -> CallResult:
    started = events.by_remote("call.started", sent.remote)
    if started is None:
        refused = events.by_remote("call.ended", sent.remote)
        return CallResult(served=False, end_reason=str((refused or {}).get("reason", "")))
    result = CallResult(served=True)
    starts: set[int] = set()
    speech_end: dict[int, int] = {}
    finals: dict[int, tuple[float, dict[str, Any]]] = {}
    for arrival, event in events.of_call(started["call_id"]):
        kind = event["type"]
        segment = int(event.get("segment_id", -1))
        if kind == "vad.speech_start":
            starts.add(segment)
        elif kind == "vad.speech_end":
            speech_end[segment] = int(event["timestamp_ms"])
        elif kind == "transcript.final":
            finals[segment] = (arrival, event)
        elif kind == "session.closed":
            result.closed = True
        elif kind == "call.ended":
            result.statistics = dict(event.get("statistics") or {})
            result.end_reason = str(event.get("reason", ""))
    result.finals = [finals[s] for s in sorted(finals)]
    result.missing_finals = sum(1 for s in starts if s not in finals)
    for segment, (arrival, event) in finals.items():
        ended_at = sent.first_sent + int(event["end_ms"]) / 1000
        result.final_delays_ms.append((arrival - ended_at) * 1000)
        if segment in speech_end:
            vad_end = sent.first_sent + speech_end[segment] / 1000
            result.vad_delays_ms.append((arrival - vad_end) * 1000)
    if result.finals:
        result.drain_ms = (max(at for at, _ in result.finals) - sent.last_sent) * 1000
    result.wer = wer(reference, result.text, allow_empty=True)
    return result


async def run_calls(
    base_url: str,
    rtp_port: int,
    samples: npt.NDArray[np.int16],
    specs: list[tuple[str, int, Impairments | None]],
    timeout_s: float,
) -> tuple[EventLog, list[SentCall]]:
    """Send ``specs`` (codec, SSRC, impairments) as simultaneous calls; wait for their ends."""
    async with EventLog(base_url) as events:
        sent = await asyncio.gather(
            *(
                send_call("127.0.0.1", rtp_port, samples, codec, ssrc, impairments)
                for codec, ssrc, impairments in specs
            )
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = 0
            for call in sent:
                started = events.by_remote("call.started", call.remote)
                if started is not None and events.ended(started["call_id"]) is not None:
                    done += 1
                elif started is None and events.by_remote("call.ended", call.remote):
                    done += 1  # refused
            if done == len(sent):
                break
            await asyncio.sleep(0.05)
        else:
            log(f"timed out after {timeout_s:.0f} s waiting for call.ended")
        await asyncio.sleep(0.1)  # nothing should follow call.ended, but let stragglers in
    return events, list(sent)


@dataclass
class CpuWindow:
    """Cores used by the API process, by it and its workers, and by everything else."""

    api_pid: int
    theo_pids: list[int]
    started: float = 0.0
    api_start: float = 0.0
    theo_start: float = 0.0
    mine_start: float = 0.0
    busy_start: float | None = None

    def _theo(self) -> float:
        return sum(cpu_seconds(pid) or 0.0 for pid in self.theo_pids)

    @staticmethod
    def _mine() -> float:
        times = os.times()
        return times.user + times.system

    def start(self) -> None:
        self.started = time.monotonic()
        self.api_start = cpu_seconds(self.api_pid) or 0.0
        self.theo_start = self._theo()
        self.mine_start = self._mine()
        self.busy_start = machine_busy_seconds()

    def stop(self) -> tuple[float, float, float | None]:
        wall = max(time.monotonic() - self.started, 1e-9)
        api = (cpu_seconds(self.api_pid) or 0.0) - self.api_start
        theo = self._theo() - self.theo_start
        mine = self._mine() - self.mine_start
        busy = machine_busy_seconds()
        other = None if busy is None or self.busy_start is None else busy - self.busy_start
        other_cores = None if other is None else max(other - theo - mine, 0.0) / wall
        return api / wall, theo / wall, other_cores


@dataclass
class LevelResult:
    calls: int
    results: list[CallResult]
    problems: list[str]
    api_cores: float
    theo_cores: float
    other_cores: float | None
    wall_s: float


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def quantiles(values: list[float]) -> tuple[str, str]:
    if not values:
        return "-", "-"
    return f"{percentile(values, 0.5):.0f}", f"{percentile(values, 0.95):.0f}"


def levels_up_to(limit: int) -> list[int]:
    """1, 2, 4, 6, 8, 10, ... up to ``limit`` (``limit`` itself included)."""
    levels = [n for n in (1, 2, 4) if n <= limit]
    levels += list(range(6, limit + 1, 2))
    if limit not in levels:
        levels.append(limit)
    return levels


def load_text() -> str:
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "-"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="RTP ingest cost, concurrent phone calls that keep up, G.711 vs PCM16 WER."
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="STT model (default: %(default)s)")
    parser.add_argument(
        "--max-calls",
        type=int,
        default=8,
        help="most simultaneous calls tried, as 1,2,4,6,8,... (default: %(default)s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 10,000 packets, calls up to 2, only the two WebSocket WER rows",
    )
    parser.add_argument(
        "--packets", type=int, default=50_000, help="packets of table 1 (default: %(default)s)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per table 1 row")
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="8 kHz mono PCM16 WAV")
    parser.add_argument(
        "--reference", type=Path, default=DEFAULT_REFERENCE, help="the clip's transcript"
    )
    parser.add_argument("--language", default="en", help="language of calls and sessions")
    parser.add_argument(
        "--drain-limit",
        type=float,
        default=2.0,
        help="seconds after a call's last packet by which its last final must arrive",
    )
    parser.add_argument(
        "--theo-home",
        type=Path,
        default=None,
        help="existing THEO_HOME (the model is pulled there if missing); default: a temporary one",
    )
    parser.add_argument("--startup-timeout", type=float, default=300.0, help="seconds")
    parser.add_argument("--skip-server", action="store_true", help="only table 1 (no theo serve)")
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temporary directory and server log"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.max_calls = min(args.max_calls, 2)
        args.packets = min(args.packets, 10_000)
    if args.max_calls < 1 or args.packets < 100 or args.repeats < 1:
        parser.error("--max-calls, --repeats must be >= 1 and --packets >= 100")
    return args


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def calls_table(
    server: RunningServer,
    rtp_port: int,
    speech: npt.NDArray[np.int16],
    reference: str,
    args: argparse.Namespace,
    theo_pids: list[int],
) -> list[LevelResult]:
    levels: list[LevelResult] = []
    timeout = len(speech) / RATE + IDLE_TIMEOUT_MS / 1000 + 120
    for n in levels_up_to(args.max_calls):
        wait_idle(server.process.pid, 60.0)
        meter = CpuWindow(server.process.pid, theo_pids)
        meter.start()
        began = time.monotonic()
        specs: list[tuple[str, int, Impairments | None]] = [
            ("pcmu", 0x10000000 + index, None) for index in range(n)
        ]
        events, sent = asyncio.run(run_calls(server.base_url, rtp_port, speech, specs, timeout))
        wall = time.monotonic() - began
        api_cores, theo_cores, other_cores = meter.stop()
        results = [analyse_call(events, call, reference) for call in sent]
        problems = [
            f"call {index}: {problem}"
            for index, result in enumerate(results)
            for problem in result.problems(args.drain_limit * 1000)
        ]
        level = LevelResult(n, results, problems, api_cores, theo_cores, other_cores, wall)
        levels.append(level)
        kept = sum(1 for r in results if not r.problems(args.drain_limit * 1000))
        delays = [d for r in results for d in r.final_delays_ms]
        log(
            f"{n} call(s): {kept}/{n} keep up, final p50 {quantiles(delays)[0]} ms, "
            f"theo {theo_cores * 100:.0f}% cpu, problems: {problems or 'none'}"
        )
        for index, result in enumerate(results):
            log(f"  call {index}: {result.text!r}")
        if kept < n:
            break
    return levels


def print_calls(levels: list[LevelResult], args: argparse.Namespace, clip_s: float) -> None:
    limit_ms = args.drain_limit * 1000
    print(
        f"2. concurrent PCMU calls of the clip ({clip_s:.1f} s + {TAIL_SILENCE_S:.0f} s silence, "
        f"real-time pace, all starting together), {args.model}; keeps up = served, one final "
        f"per utterance, 0 frames dropped, last final <= {args.drain_limit:.1f} s after the "
        "last packet"
    )
    rows = []
    for level in levels:
        results = level.results
        kept = sum(1 for r in results if not r.problems(limit_ms))
        delays = [d for r in results for d in r.final_delays_ms]
        vad = [d for r in results for d in r.vad_delays_ms]
        drains = [r.drain_ms for r in results if r.drain_ms is not None]
        wers = [r.wer for r in results if r.wer is not None]
        finals = sum(len(r.finals) for r in results)
        dropped = sum(int(r.statistics.get("frames_dropped", 0) or 0) for r in results)
        rows.append(
            [
                str(level.calls),
                f"{kept}/{level.calls}",
                str(finals),
                *quantiles(delays),
                *quantiles(vad),
                "-" if not drains else f"{max(drains):.0f}",
                fmt_pct(statistics.fmean(wers) if wers else None),
                fmt_pct(max(wers) if wers else None),
                str(dropped),
                f"{level.api_cores * 100:.0f}%",
                f"{level.theo_cores * 100:.0f}%",
                "-" if level.other_cores is None else f"{level.other_cores * 100:.0f}%",
            ]
        )
    print_table(
        [
            "calls",
            "keep up",
            "finals",
            "final delay p50 ms",
            "p95",
            "after VAD end p50",
            "p95",
            "max drain ms",
            "WER mean",
            "max",
            "dropped",
            "api cpu",
            "theo cpu",
            "other cpu",
        ],
        rows,
    )
    for level in levels:
        for problem in level.problems[:6]:
            print(f"   {level.calls} calls: {problem}")
    kept_all = [lv.calls for lv in levels if not lv.problems]
    best = 0
    for level in levels:
        if level.problems:
            break
        best = level.calls
    tried = ",".join(str(lv.calls) for lv in levels)
    stopped = "" if len(kept_all) == len(levels) else f" (stopped at {levels[-1].calls})"
    print(
        f"   largest number of simultaneous calls that kept up: {best or 'none'} "
        f"(tried {tried}{stopped})"
        + ("" if stopped else f"; the limit was not reached, try --max-calls {best + 4}")
    )
    print(
        "   cpu = % of one core: api = theo serve's process (RTP ingest, sessions, VAD), "
        "theo = api + workers, other = the rest of the machine (> 20%: a noisy run)"
    )


@dataclass
class WerRow:
    name: str
    wer: float | None
    finals: int
    delays_ms: list[float]
    stats: dict[str, Any] | None = None
    note: str = ""


def websocket_row(
    base_url: str, model: str, language: str | None, speech: npt.NDArray[np.int16], ulaw: bool
) -> tuple[list[float], list[str]]:
    """Final delays (ms) and finals of one realtime WebSocket session of ``speech``."""
    url = ws_url(base_url, model, language)
    command: dict[str, Any]
    if ulaw:
        command = {"type": "session.configure", "input_audio_format": "g711_ulaw"}
        audio, per_sample = pcm16_to_ulaw(speech), 1
    else:
        command = {"type": "session.configure", "input_sample_rate": RATE}
        audio, per_sample = speech.astype("<i2").tobytes(), 2
    session = asyncio.run(
        run_session(
            url,
            audio,
            RATE,
            commands_before=[command],
            tail_silence_s=0.0,
            bytes_per_sample=per_sample,
        )
    )
    # run_session's times count from just before it connects; its frames are paced on
    # that clock, so audio time t was sent at about t seconds.
    delays = [
        (at - int(event["end_ms"]) / 1000) * 1000
        for at, event in zip(session.times, session.events, strict=True)
        if event["type"] == "transcript.final"
    ]
    return delays, session.finals()


def batch_text(
    base_url: str, model: str, language: str | None, samples: npt.NDArray[np.int16]
) -> str:
    """``POST /v1/audio/transcriptions`` of ``samples`` (8 kHz) as a WAV file."""
    data = {"model": model, "response_format": "json", "temperature": "0"}
    if language:
        data["language"] = language
    response = httpx.post(
        f"{base_url}/v1/audio/transcriptions",
        data=data,
        files={"file": ("clip.wav", wav_bytes(samples, RATE), "audio/wav")},
        timeout=300.0,
    )
    response.raise_for_status()
    return str(response.json()["text"])


def batch_rows(
    base_url: str,
    model: str,
    language: str | None,
    speech: npt.NDArray[np.int16],
    reference: str,
) -> list[WerRow]:
    """The same audio decoded in one batch pass: the codec's effect without streaming's."""
    rows = []
    for name, samples in (
        ("batch POST, PCM16 8 kHz", speech),
        ("batch POST, mu-law round trip", ulaw_to_pcm16(pcm16_to_ulaw(speech))),
        ("batch POST, A-law round trip", alaw_to_pcm16(pcm16_to_alaw(speech))),
    ):
        text = batch_text(base_url, model, language, samples)
        rows.append(WerRow(name, wer(reference, text, allow_empty=True), 0, [], note=""))
        log(f"{name}: WER {fmt_pct(rows[-1].wer)}: {text!r}")
    return rows


def wer_table(
    server: RunningServer,
    rtp_port: int,
    speech: npt.NDArray[np.int16],
    reference: str,
    args: argparse.Namespace,
) -> list[WerRow]:
    language = args.language or None
    rows: list[WerRow] = []
    for name, ulaw in (("PCM16 8 kHz, WebSocket", False), ("G.711 mu-law, WebSocket", True)):
        wait_idle(server.process.pid, 60.0)
        delays, finals = websocket_row(server.base_url, args.model, language, speech, ulaw)
        text = " ".join(finals)
        rows.append(WerRow(name, wer(reference, text, allow_empty=True), len(finals), delays))
        log(f"{name}: WER {fmt_pct(rows[-1].wer)}: {text!r}")
    if args.quick:
        return rows + batch_rows(server.base_url, args.model, language, speech, reference)
    timeout = len(speech) / RATE + IDLE_TIMEOUT_MS / 1000 + 120
    for name, codec, impairments in (
        ("PCMU, RTP", "pcmu", None),
        ("PCMA, RTP", "pcma", None),
        ("PCMU, RTP, 5% loss 10% reorder 3% dup", "pcmu", LOSSY_IMPAIRMENTS),
    ):
        wait_idle(server.process.pid, 60.0)
        specs = [(codec, 0x20000000 + len(rows), impairments)]
        events, sent = asyncio.run(run_calls(server.base_url, rtp_port, speech, specs, timeout))
        result = analyse_call(events, sent[0], reference)
        report = sent[0].report
        note = (
            f"sent {report.sent} of {report.packets}: {report.dropped} dropped, "
            f"{report.reordered} reordered, {report.duplicated} duplicated"
            if impairments
            else ""
        )
        problems = result.problems(args.drain_limit * 1000)
        if problems:
            note = "; ".join(filter(None, [note, *problems]))
        rows.append(
            WerRow(
                name,
                result.wer if result.served else None,
                len(result.finals),
                result.final_delays_ms,
                result.statistics,
                note,
            )
        )
        log(f"{name}: WER {fmt_pct(rows[-1].wer)}: {result.text!r}")
    return rows + batch_rows(server.base_url, args.model, language, speech, reference)


def print_wer(rows: list[WerRow], args: argparse.Namespace) -> None:
    print(
        f"3. WER of G.711 against PCM16 (the clip + {TAIL_SILENCE_S:.0f} s silence, one path at "
        f"a time, same server, {args.model}; WER against the reference text)"
    )
    base = rows[0].wer
    body = []
    for row in rows:
        diff = "-" if row.wer is None or base is None else f"{(row.wer - base) * 100:+.1f}"
        stats = row.stats or {}
        shown = (
            " ".join(
                f"{name.split('_')[0]} {stats[name]:.1f}"
                if isinstance(stats.get(name), float)
                else f"{name.split('_')[0]} {stats.get(name, '-')}"
                for name in STAT_NAMES
            )
            if row.stats
            else "-"
        )
        body.append(
            [
                row.name,
                fmt_pct(row.wer),
                diff,
                str(row.finals) if row.finals else "-",
                quantiles(row.delays_ms)[0],
                shown,
            ]
        )
    print_table(
        ["path", "WER", "pts vs PCM16 WS", "finals", "final delay p50 ms", "server statistics"],
        body,
    )
    for row in rows:
        if row.note:
            print(f"   {row.name}: {row.note}")
    print(
        "   batch rows: one decode of the whole file (the codec's own effect); streamed rows: "
        "a final per VAD segment, whose words depend on when partial decodes ran"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started_run = time.monotonic()
    clip, rate = read_wav(args.clip.resolve())
    if rate != RATE:
        raise SystemExit(f"{args.clip}: {rate} Hz; telephony audio is {RATE} Hz")
    reference = args.reference.read_text(encoding="utf-8").strip()
    speech = np.concatenate([clip, np.zeros(round(TAIL_SILENCE_S * RATE), np.int16)])
    log(f"load average {load_text()}; {os.cpu_count()} CPUs")

    log(f"table 1: {args.packets} packets, best of {args.repeats}")
    ingest_rows, ingest_info = ingest_table(clip, args.packets, args.repeats)
    if args.skip_server:
        print()
        print_ingest(ingest_rows, ingest_info, args.repeats)
        return 0

    for name, value in (
        ("THEO_DOWNLOAD_CACHE_DIR", str(TEST_CACHE / "downloads")),
        ("HF_HUB_OFFLINE", "1"),
    ):
        if args.theo_home is None and (TEST_CACHE / "downloads").is_dir():
            os.environ.setdefault(name, value)
    workdir = Path(tempfile.mkdtemp(prefix="theo-telephony-bench-"))
    log_path = workdir / "theo.log"
    failed = True
    try:
        home, models_dir = model_links(args.theo_home, workdir, (args.model,), log_path)
        rtp_port = free_udp_port()
        extra_env = {
            "THEO_TELEPHONY__RTP_PORT": str(rtp_port),
            "THEO_TELEPHONY__IDLE_TIMEOUT_MS": str(IDLE_TIMEOUT_MS),
            "THEO_TELEPHONY__MAX_CALLS": str(max(16, args.max_calls)),
            "THEO_TELEPHONY__MODEL": args.model,
            "THEO_TELEPHONY__LANGUAGE": args.language,
        }
        if args.theo_home is None and "THEO_ITN_CACHE_DIR" not in os.environ:
            extra_env["THEO_ITN_CACHE_DIR"] = str(TEST_CACHE / "itn")
        log(f"starting theo serve (RTP on udp/{rtp_port})")
        with serving(home, log_path, models_dir, extra_env, args.startup_timeout) as server:
            health = server.health()
            theo_pids = [server.process.pid, *(int(w["pid"]) for w in health.get("workers", []))]
            waited = wait_idle(server.process.pid, args.startup_timeout)
            log(f"server ready, idle after {waited:.1f} s more; warm-up call")
            warm = speech[: round(WARMUP_SECONDS * RATE)]
            warm = np.concatenate([warm, np.zeros(RATE, np.int16)])
            asyncio.run(
                run_calls(server.base_url, rtp_port, warm, [("pcmu", 0x0BADCAFE, None)], 120)
            )
            levels = calls_table(server, rtp_port, speech, reference, args, theo_pids)
            wer_rows = wer_table(server, rtp_port, speech, reference, args)
            log("stopping theo serve")
        print()
        print(
            f"telephony benchmark, {time.strftime('%Y-%m-%d')}: {os.cpu_count()} CPUs, load "
            f"average now {load_text()}, Python {sys.version.split()[0]}, run "
            f"{time.monotonic() - started_run:.0f} s"
        )
        print()
        print_ingest(ingest_rows, ingest_info, args.repeats)
        print()
        print_calls(levels, args, len(clip) / RATE)
        print()
        print_wer(wer_rows, args)
        failed = False
    finally:
        if failed or args.keep_temp:
            log(f"server log and temp files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
