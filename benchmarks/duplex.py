"""Voice-to-voice benchmark: a realtime session that hears a caller and speaks back.

Voice to voice (v2v) is what a caller waits after they stop talking: from the end of
their speech to the first byte of the spoken reply at their end. No language model is in
the loop; the client answers every final at once with a fixed sentence (``--reply``).

One run of this script:

1. installs ``faster-whisper-tiny.en`` and ``piper-en-us-joe-medium`` with ``theo pull``
   into a temporary ``THEO_HOME`` (or uses ``--theo-home``), starts ``theo serve`` with
   only those two models on a free port and waits until ``GET /health`` says ``ok`` and
   the server is idle;
2. cuts the caller's utterances out of real speech (the LibriVox clip the streaming
   benchmark uses, split at its pauses, and two short card names), each trimmed to its
   speech with an energy threshold (20 ms frames within 30 dB of the clip's peak: the
   LibriVox room tone sits ~33 dB down), so the end of speech is the end of the
   utterance's last frame;
3. runs one untimed warm-up session, then, per ``--sessions`` level N, N sessions at
   once on ``WS /v1/realtime?model=faster-whisper-tiny.en``. Each streams 20 ms PCM16
   frames at real-time pace without a break (digital silence between utterances) and,
   ``--utterances`` times: says an utterance (sessions start at different utterances
   and ``--stagger-ms`` apart, so their ends do not all coincide), sends ``tts.speak``
   (Piper, the fixed reply) as soon as a ``transcript.final`` arrives after the last
   speech frame left, waits for ``tts.speaking_end``, then for the reply to finish
   playing (first audio + its ``duration_ms``) plus the session's 200 ms mute tail and
   ``--gap`` (mute-on-speak stays on, as a phone would have it);
4. calls the raw engines in this process, one at a time, while the server idles:
   faster-whisper ``WhisperModel.transcribe`` on each utterance (the settings Theo's
   worker loads: ``benchmarks/batch.py``'s direct engine) and Piper's own streaming
   ``synthesize`` of the reply (``benchmarks/tts.py``'s direct engine);
5. prints the latency table, the raw engines and the ratios Theo/raw; stops the server.

Every time is on this process's monotonic clock; the ``vad.*`` timestamps are on the
session's audio clock (ms of audio received), so the client knows when it sent the
audio they point at. Per utterance:

* **v2v**: first binary (audio) message of the reply - send time of the utterance's last
  speech frame. It is the sum of the three parts:
* **vad end**: the end of speech -> the send time of the frame that completed the VAD's
  300 ms of silence (10 windows of 32 ms) after the speech end it reports
  (``vad.speech_end`` ``timestamp_ms``): the moment the server could first know. It is
  reconstructed that way because ``vad.speech_end`` itself is released after the
  segment's final (a segment's events stay in order), so its arrival says nothing;
* **decode**: that moment -> arrival of ``transcript.final`` (the final's decode,
  post-processing, queueing and transport);
* **tts**: arrival of the final -> first audio byte (``tts.speak`` sent, Piper's first
  piece, conversion to the session's 16 kHz, transport).

**srv v2v** is the mean of the server's own ``theo_v2v_seconds`` (``GET /metrics``), which
counts from the final's last word instead. The ratios divide Theo's p50 by the raw
engine's p50 (the raw decode over the same mix of utterances): ``decode`` against one
``transcribe`` of the utterance, ``tts`` against Piper's time to its first chunk. The
decode ratio is far below 1 by design, not by measurement error: Theo decodes the final
as soon as the VAD first hears a pause, so it is mostly done when the 300 ms wait ends,
and it encodes only the segment's length where ``transcribe`` encodes a 30 s window.

Usage (from the repository root)::

    .venv/bin/python benchmarks/duplex.py                 # ~3.5 minutes on 2 cores
    .venv/bin/python benchmarks/duplex.py --sessions 1,2,4 --utterances 15 --json v2v.json
    .venv/bin/python benchmarks/duplex.py --theo-home ~/.theo --reply "One moment, please."

With a temporary ``THEO_HOME`` the models are pulled reusing the test suite's download
cache (``.theo-test-cache/downloads``, ``HF_HUB_OFFLINE=1``) when it exists. Progress goes
to stderr, the tables to stdout, the server's output to ``theo.log`` in the temporary
directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import websockets
from batch import DirectEngine as DirectWhisper
from harness import log, model_links, percentile
from streaming import CpuMeter, print_table, wait_idle
from tts import SETTLE_S, DirectPiper
from websockets.asyncio.client import ClientConnection

from tests.helpers.audio import read_wav
from tests.helpers.realtime import ws_url
from tests.helpers.server import FIXTURES, TEST_CACHE, RunningServer, serving

STT_MODEL = "faster-whisper-tiny.en"
TTS_MODEL = "piper-en-us-joe-medium"
DEFAULT_REPLY = "Okay, let me check that for you."
DEFAULT_CLIPS = ("en_librivox.wav", "en_cards_five_five.wav", "en_cards_seven_of_clubs.wav")
RATE = 16_000
FRAME_MS = 20
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2
SILENCE = bytes(FRAME_BYTES)
VAD_END_HANGOVER_MS = 10 * 32  # the VAD's 300 ms minimum silence, in whole 32 ms windows
MUTE_TAIL_S = 0.2  # the session's default tts_mute_tail_ms
SPEECH_BELOW_PEAK_DB = 30.0
MIN_PAUSE_MS = 250  # shorter than the VAD's 300 ms, so a piece is one VAD segment
MIN_UTTERANCE_S = 0.5
LEAD_IN_S = 0.5
FINAL_TIMEOUT_S = 15.0
REPLY_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------- utterances


@dataclass(frozen=True)
class Utterance:
    """A caller's utterance: PCM16 16 kHz from its first to its last speech frame."""

    name: str
    pcm16: bytes

    @property
    def duration_s(self) -> float:
        return len(self.pcm16) / 2 / RATE

    def samples(self) -> npt.NDArray[np.float32]:
        return np.frombuffer(self.pcm16, dtype="<i2").astype(np.float32) / 32768.0


def speech_pieces(samples: npt.NDArray[np.int16]) -> list[tuple[int, int]]:
    """[first, last] 20 ms frame indices of the speech runs between pauses >= 250 ms."""
    per_frame = FRAME_BYTES // 2
    frames = samples[: samples.size // per_frame * per_frame].astype(np.float64)
    rms = np.sqrt((frames.reshape(-1, per_frame) ** 2).mean(axis=1))
    level = 20 * np.log10(rms / 32768 + 1e-12)
    voiced = np.flatnonzero(level > level.max() - SPEECH_BELOW_PEAK_DB)
    pieces: list[tuple[int, int]] = []
    for index in voiced.tolist():
        if pieces and index - pieces[-1][1] - 1 < MIN_PAUSE_MS // FRAME_MS:
            pieces[-1] = (pieces[-1][0], index)
        else:
            pieces.append((index, index))
    return [(a, b) for a, b in pieces if (b - a + 1) * FRAME_MS / 1000 >= MIN_UTTERANCE_S]


def load_utterances(paths: list[Path]) -> list[Utterance]:
    """The utterances of every clip, in order; a clip's pieces interleaved with the rest."""
    per_clip: list[list[Utterance]] = []
    for path in paths:
        samples, rate = read_wav(path)
        if rate != RATE:
            raise SystemExit(f"{path}: {rate} Hz; the caller's audio must be {RATE} Hz")
        pieces = speech_pieces(samples)
        per_frame = FRAME_BYTES // 2
        per_clip.append(
            [
                Utterance(
                    f"{path.stem}#{n}" if len(pieces) > 1 else path.stem,
                    samples[a * per_frame : (b + 1) * per_frame].astype("<i2").tobytes(),
                )
                for n, (a, b) in enumerate(pieces)
            ]
        )
    # Round robin over the clips, so long and short utterances alternate.
    mixed: list[Utterance] = []
    for index in range(max(len(c) for c in per_clip)):
        mixed += [c[index] for c in per_clip if index < len(c)]
    return mixed


# --------------------------------------------------------------------------- one session


class Microphone:
    """Sends 20 ms frames at real-time pace on an absolute schedule: speech when some is
    queued, digital silence otherwise. Frame ``i`` holds session audio ``[20 i, 20 i + 20)``
    ms, so its send time places the session's audio clock on this process's clock."""

    def __init__(self, ws: ClientConnection, send_times: list[float]) -> None:
        self._ws = ws
        self._send_times = send_times
        self._queued: list[bytes] = []
        self._said: asyncio.Future[int] | None = None
        self._stop = asyncio.Event()

    def say(self, pcm16: bytes) -> asyncio.Future[int]:
        """Queue speech; resolves to the index of its last frame once that frame is sent."""
        padded = pcm16 + bytes(-len(pcm16) % FRAME_BYTES)
        self._queued = [padded[i : i + FRAME_BYTES] for i in range(0, len(padded), FRAME_BYTES)]
        self._said = asyncio.get_running_loop().create_future()
        return self._said

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            index = len(self._send_times)
            speaking = bool(self._queued)
            await self._ws.send(self._queued.pop(0) if speaking else SILENCE)
            self._send_times.append(time.monotonic())
            if speaking and not self._queued and self._said is not None:
                self._said.set_result(index)
                self._said = None
            due = started + (index + 1) * FRAME_MS / 1000
            await asyncio.sleep(max(0.0, due - time.monotonic()))


@dataclass
class Turn:
    """One utterance and the reply to it, on this process's monotonic clock."""

    utterance: str
    speech_end: float
    """Send time of the utterance's last frame."""
    speech_end_ms: int
    """The same moment on the session's audio clock."""
    final_at: float | None = None
    final_segment: int | None = None
    final_text: str = ""
    final_end_ms: int = 0
    """The final's ``end_ms``: its last word's end, on the session's audio clock."""
    first_audio_at: float | None = None
    reply_ms: int = 0
    failure: str | None = None


@dataclass
class SessionTrace:
    """What one session sent and received."""

    turns: list[Turn] = field(default_factory=list)
    send_times: list[float] = field(default_factory=list)
    """One per 20 ms frame sent, speech and silence alike."""
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def sent_at(self, audio_ms: float) -> float:
        """When the frame holding session audio at ``audio_ms`` left the client."""
        index = min(max(int(audio_ms // FRAME_MS), 0), len(self.send_times) - 1)
        return self.send_times[index]


Inbox = asyncio.Queue[tuple[float, dict[str, Any] | None]]
"""Messages in arrival order: (arrival, event), the event None for a binary (audio) one."""


async def next_message(inbox: Inbox, deadline: float) -> tuple[float, dict[str, Any] | None]:
    return await asyncio.wait_for(inbox.get(), max(deadline - time.monotonic(), 0.001))


async def take_turn(
    mic: Microphone,
    ws: ClientConnection,
    inbox: Inbox,
    trace: SessionTrace,
    utterance: Utterance,
    args: argparse.Namespace,
) -> Turn:
    """Say ``utterance``, answer its final with the reply, wait until the reply has played."""
    last = await mic.say(utterance.pcm16)
    turn = Turn(utterance.name, trace.send_times[last], (last + 1) * FRAME_MS)
    deadline = turn.speech_end + FINAL_TIMEOUT_S
    try:
        while turn.final_at is None:
            arrival, event = await next_message(inbox, deadline)
            # A final that arrived before the speech ended closed a piece the VAD split off.
            if event and event["type"] == "transcript.final" and arrival > turn.speech_end:
                turn.final_at, turn.final_segment = arrival, int(event["segment_id"])
                turn.final_text, turn.final_end_ms = str(event["text"]), int(event["end_ms"])
    except TimeoutError:
        turn.failure = "no final"
        return turn
    request_id = f"r-{uuid.uuid4().hex[:12]}"
    speak = {"type": "tts.speak", "text": args.reply, "model": TTS_MODEL, "request_id": request_id}
    await ws.send(json.dumps(speak))
    deadline = time.monotonic() + REPLY_TIMEOUT_S
    try:
        while True:
            arrival, event = await next_message(inbox, deadline)
            if event is None:
                turn.first_audio_at = turn.first_audio_at or arrival
            elif event.get("request_id") != request_id:
                continue
            elif event["type"] == "error":
                turn.failure = f"{event['code']}: {event['message']}"
            elif event["type"] == "tts.speaking_end":
                turn.reply_ms = int(event["duration_ms"])
                if event["reason"] != "done" and turn.failure is None:
                    turn.failure = f"reply ended: {event['reason']}"
                break
    except TimeoutError:
        turn.failure = "no tts.speaking_end"
        return turn
    if turn.first_audio_at is not None:
        # Mute-on-speak ignores the caller until the reply has played, plus its tail.
        played = turn.first_audio_at + turn.reply_ms / 1000 + MUTE_TAIL_S + args.gap
        await asyncio.sleep(max(0.0, played - time.monotonic()))
    return turn


async def run_session(
    url: str, utterances: list[Utterance], args: argparse.Namespace, start_delay_s: float
) -> SessionTrace:
    """One session: a short lead-in of silence, the utterances in turn, ``session.close``."""
    trace = SessionTrace()
    inbox: Inbox = asyncio.Queue()
    await asyncio.sleep(start_delay_s)
    try:
        async with websockets.connect(url, max_size=None, open_timeout=60) as ws:
            mic = Microphone(ws, trace.send_times)

            async def receive() -> None:
                async for message in ws:
                    arrival = time.monotonic()
                    if isinstance(message, bytes):
                        inbox.put_nowait((arrival, None))
                        continue
                    event = json.loads(message)
                    trace.events.append((arrival, event))
                    inbox.put_nowait((arrival, event))
                    if event["type"] == "error":
                        trace.errors.append(f"{event['code']}: {event['message']}")
                    if event["type"] == "session.closed":
                        return

            receiver = asyncio.create_task(receive())
            sender = asyncio.create_task(mic.run())
            await asyncio.sleep(LEAD_IN_S)
            for utterance in utterances:
                trace.turns.append(await take_turn(mic, ws, inbox, trace, utterance, args))
            mic.stop()
            await sender
            await ws.send(json.dumps({"type": "session.close"}))
            await asyncio.wait_for(receiver, 60)
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        trace.errors.append(f"{type(exc).__name__}: {exc}")
    return trace


async def run_level(
    url: str, pool: list[Utterance], sessions: int, args: argparse.Namespace
) -> list[SessionTrace]:
    """``sessions`` sessions at once, each starting at its own utterance of the pool."""
    plans = [
        [pool[(start + n) % len(pool)] for n in range(args.utterances)] for start in range(sessions)
    ]
    delays = [index * args.stagger_ms / 1000 for index in range(sessions)]
    runs = (run_session(url, plan, args, d) for plan, d in zip(plans, delays, strict=True))
    return list(await asyncio.gather(*runs))


# --------------------------------------------------------------------------- analysis


@dataclass
class TurnResult:
    """One answered utterance's latency, in milliseconds."""

    utterance: str
    v2v_ms: float
    vad_ms: float
    decode_ms: float
    tts_ms: float
    vad_trail_ms: float
    """The VAD's speech end after the energy end (Silero's score trails a sound)."""
    word_lead_ms: float
    """The end of speech after the final's last word ends (``theo_v2v_seconds`` counts
    from that word's end)."""
    text: str


def analyse(trace: SessionTrace) -> tuple[list[TurnResult], list[str]]:
    """The turns that got a reply, and why the others did not."""
    ends = {
        int(event["segment_id"]): int(event["timestamp_ms"])
        for _, event in trace.events
        if event["type"] == "vad.speech_end"
    }
    results: list[TurnResult] = []
    problems = list(trace.errors)
    for turn in trace.turns:
        if turn.failure or turn.final_at is None or turn.first_audio_at is None:
            problems.append(f"{turn.utterance}: {turn.failure or 'no reply audio'}")
            continue
        vad_end_ms = ends.get(turn.final_segment or -1)
        if vad_end_ms is None:
            problems.append(f"{turn.utterance}: no vad.speech_end for its final")
            continue
        decided = trace.sent_at(vad_end_ms + VAD_END_HANGOVER_MS - 1)
        results.append(
            TurnResult(
                utterance=turn.utterance,
                v2v_ms=(turn.first_audio_at - turn.speech_end) * 1000,
                vad_ms=(decided - turn.speech_end) * 1000,
                decode_ms=(turn.final_at - decided) * 1000,
                tts_ms=(turn.first_audio_at - turn.final_at) * 1000,
                vad_trail_ms=float(vad_end_ms - turn.speech_end_ms),
                word_lead_ms=float(turn.speech_end_ms - turn.final_end_ms),
                text=turn.final_text,
            )
        )
    return results, problems


@dataclass
class LevelResult:
    sessions: int
    turns: list[TurnResult]
    problems: list[str]
    attempted: int
    finals: int
    srv_v2v_ms: float | None
    wall_s: float
    theo_cores: float
    other_cores: float | None

    def values(self, name: str) -> list[float]:
        return [float(getattr(turn, name)) for turn in self.turns]


_V2V_METRIC = re.compile(r"^theo_v2v_seconds_(sum|count) (\S+)$", re.MULTILINE)


def v2v_metric(client: httpx.Client, base_url: str) -> tuple[float, float]:
    """(sum, count) of the server's ``theo_v2v_seconds`` histogram."""
    found = dict(_V2V_METRIC.findall(client.get(f"{base_url}/metrics").text))
    return float(found.get("sum", 0.0)), float(found.get("count", 0.0))


def measure_level(
    server: RunningServer, pool: list[Utterance], sessions: int, args: argparse.Namespace
) -> LevelResult:
    url = ws_url(server.base_url, STT_MODEL)
    health = server.health()
    meter = CpuMeter([server.process.pid, *(int(w["pid"]) for w in health.get("workers", []))])
    with httpx.Client(timeout=30.0) as client:
        before = v2v_metric(client, server.base_url)
        meter.start()
        began = time.monotonic()
        traces = asyncio.run(run_level(url, pool, sessions, args))
        wall = time.monotonic() - began
        theo_cores, other_cores = meter.stop()
        after = v2v_metric(client, server.base_url)
    turns: list[TurnResult] = []
    problems: list[str] = []
    for index, trace in enumerate(traces):
        done, failed = analyse(trace)
        turns += done
        problems += [f"session {index}: {problem}" for problem in failed]
    count = after[1] - before[1]
    return LevelResult(
        sessions=sessions,
        turns=turns,
        problems=problems,
        attempted=sum(len(trace.turns) for trace in traces),
        finals=sum(
            1 for trace in traces for _, e in trace.events if e["type"] == "transcript.final"
        ),
        srv_v2v_ms=(after[0] - before[0]) / count * 1000 if count else None,
        wall_s=wall,
        theo_cores=theo_cores,
        other_cores=other_cores,
    )


# --------------------------------------------------------------------------- raw engines


@dataclass
class RawResult:
    """The engines called directly: ms per utterance (one decode), and Piper's TTFA runs."""

    decode_ms: dict[str, float]
    decode_text: dict[str, str]
    piper_ttfa_ms: list[float]
    whisper_settings: str


def time_raw_engines(
    stt_dir: Path, tts_dir: Path, pool: list[Utterance], args: argparse.Namespace
) -> RawResult:
    """faster-whisper on each utterance, Piper on the reply: warm-up, then the median."""
    whisper = DirectWhisper(stt_dir, "en")
    decode_ms: dict[str, float] = {}
    decode_text: dict[str, str] = {}
    for utterance in pool:
        audio = utterance.samples()
        whisper.transcribe_audio(audio)
        times: list[float] = []
        for _ in range(args.raw_runs):
            started = time.perf_counter()
            decode_text[utterance.name] = whisper.transcribe_audio(audio)
            times.append((time.perf_counter() - started) * 1000)
        decode_ms[utterance.name] = statistics.median(times)
    piper = DirectPiper(tts_dir)  # loads, and synthesizes once
    ttfa: list[float] = []
    for _ in range(args.raw_runs):
        time.sleep(SETTLE_S)  # onnxruntime's threads spin a while after each run
        ttfa.append(piper.stream(args.reply).ttfa_s * 1000)
    return RawResult(decode_ms, decode_text, ttfa, whisper.describe())


# --------------------------------------------------------------------------- output


def pair(values: list[float]) -> list[str]:
    if not values:
        return ["-", "-"]
    return [f"{percentile(values, 0.5):.0f}", f"{percentile(values, 0.95):.0f}"]


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def raw_decodes(level: LevelResult, raw: RawResult) -> list[float]:
    """The raw decode time of each turn's utterance: the same mix as Theo's turns."""
    return [raw.decode_ms[turn.utterance] for turn in level.turns]


def ratio(theo: list[float], direct: list[float]) -> str:
    if not theo or not direct:
        return "-"
    return f"{percentile(theo, 0.5) / percentile(direct, 0.5):.2f}"


def report(
    levels: list[LevelResult], raw: RawResult, pool: list[Utterance], args: argparse.Namespace
) -> None:
    lengths = [u.duration_s for u in pool]
    print()
    print(
        f"{STT_MODEL} + {TTS_MODEL}; reply {args.reply!r}; {len(pool)} utterances of "
        f"{min(lengths):.1f}-{max(lengths):.1f} s (mean {statistics.fmean(lengths):.1f} s), "
        f"{args.utterances} per session; {os.cpu_count()} CPUs"
    )
    print()
    print("voice to voice, ms (p50 / p95 over every answered turn of every session):")
    rows = [
        [
            str(level.sessions),
            f"{len(level.turns)}/{level.attempted}",
            str(level.finals),
            *pair(level.values("v2v_ms")),
            *pair(level.values("vad_ms")),
            *pair(level.values("decode_ms")),
            *pair(level.values("tts_ms")),
            fmt(level.srv_v2v_ms),
            f"{level.theo_cores:.2f}",
            fmt(level.other_cores, 2),
        ]
        for level in levels
    ]
    headers = ["sessions", "answered", "finals", "v2v p50", "p95", "vad end p50", "p95"]
    headers += ["decode p50", "p95", "tts p50", "p95", "srv v2v", "theo cpu", "other cpu"]
    print_table(headers, rows)
    print()
    decodes = list(raw.decode_ms.values())
    print(f"raw engines in this process, one call at a time, median of {args.raw_runs}:")
    print(
        f"  faster-whisper transcribe, one decode per utterance: p50 {percentile(decodes, 0.5):.0f}"
        f" ms, {min(decodes):.0f}-{max(decodes):.0f} ms ({raw.whisper_settings})"
    )
    ttfa = percentile(raw.piper_ttfa_ms, 0.5)
    print(f"  piper synthesize, first chunk of the reply: p50 {ttfa:.0f} ms")
    print()
    print("Theo / raw (p50 / p50; raw decode over the same mix of utterances):")
    rows = [
        [
            str(level.sessions),
            pair(level.values("decode_ms"))[0],
            pair(raw_decodes(level, raw))[0],
            ratio(level.values("decode_ms"), raw_decodes(level, raw)),
            pair(level.values("tts_ms"))[0],
            pair(raw.piper_ttfa_ms)[0],
            ratio(level.values("tts_ms"), raw.piper_ttfa_ms),
        ]
        for level in levels
    ]
    headers = ["sessions", "decode theo", "raw", "ratio", "tts theo", "raw", "ratio"]
    print_table(headers, rows)
    print()
    print(
        f"vad end = end of speech -> the frame completing the VAD's {VAD_END_HANGOVER_MS} ms "
        "of silence after its vad.speech_end; decode -> transcript.final; tts -> first audio; "
        "v2v = their sum. The final is decoded early, when the VAD first hears a pause, so "
        "most of its decode hides in the VAD's silence wait. srv v2v: mean of "
        "theo_v2v_seconds, counted from the final's last word. finals > answered: the VAD "
        "split an utterance. other cpu > 0.2: a noisy run."
    )
    for level in levels:
        trail, lead = level.values("vad_trail_ms"), level.values("word_lead_ms")
        if trail:
            print(
                f"  x{level.sessions}: p50 the VAD's speech end {percentile(trail, 0.5):+.0f} ms "
                f"from the energy end; the final's last word ends {percentile(lead, 0.5):.0f} ms "
                "before it"
            )
        for problem in level.problems[:5]:
            print(f"  x{level.sessions}: {problem}")


def dump_json(path: Path, levels: list[LevelResult], raw: RawResult) -> None:
    data = {
        "raw": asdict(raw),
        "levels": [
            {
                **{k: v for k, v in asdict(level).items() if k != "turns"},
                "turns": [asdict(turn) for turn in level.turns],
            }
            for level in levels
        ],
    }
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,4", help="concurrent sessions per level")
    parser.add_argument("--utterances", type=int, default=10, help="turns per session")
    parser.add_argument("--reply", default=DEFAULT_REPLY, help="what the session says back")
    parser.add_argument(
        "--clips",
        nargs="+",
        type=Path,
        default=[FIXTURES / name for name in DEFAULT_CLIPS],
        help="16 kHz WAV files the utterances are cut from",
    )
    parser.add_argument("--gap", type=float, default=0.3, help="seconds after the mute tail")
    parser.add_argument("--stagger-ms", type=float, default=250.0, help="between session starts")
    parser.add_argument("--raw-runs", type=int, default=5, help="timed raw calls per input")
    parser.add_argument("--theo-home", type=Path, default=None, help="existing THEO_HOME")
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir and log")
    args = parser.parse_args(argv)
    try:
        args.levels = [int(part) for part in args.sessions.split(",") if part.strip()]
    except ValueError:
        parser.error("--sessions is a comma-separated list of integers")
    if not args.levels or min(args.levels) < 1 or args.utterances < 1 or args.raw_runs < 1:
        parser.error("--sessions, --utterances and --raw-runs must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pool = load_utterances([path.resolve() for path in args.clips])
    log(f"{len(pool)} utterances: " + ", ".join(f"{u.name} {u.duration_s:.1f} s" for u in pool))
    if args.theo_home is None and (TEST_CACHE / "downloads").is_dir():
        os.environ.setdefault("THEO_DOWNLOAD_CACHE_DIR", str(TEST_CACHE / "downloads"))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    workdir = Path(tempfile.mkdtemp(prefix="theo-duplex-bench-"))
    log_path = workdir / "theo.log"
    failed = True
    try:
        home, models_dir = model_links(args.theo_home, workdir, (STT_MODEL, TTS_MODEL), log_path)
        extra_env: dict[str, str] = {}
        if args.theo_home is None and "THEO_ITN_CACHE_DIR" not in os.environ:
            extra_env["THEO_ITN_CACHE_DIR"] = str(TEST_CACHE / "itn")
        log("starting theo serve")
        levels: list[LevelResult] = []
        with serving(home, log_path, models_dir, extra_env, args.startup_timeout) as server:
            waited = wait_idle(server.process.pid, args.startup_timeout)
            log(f"server ready, idle after {waited:.1f} s more; warm-up session")
            shortest = sorted(pool, key=lambda u: u.duration_s)[:2]
            warm = argparse.Namespace(**{**vars(args), "utterances": 2})
            asyncio.run(run_level(ws_url(server.base_url, STT_MODEL), shortest, 1, warm))
            for sessions in args.levels:
                wait_idle(server.process.pid, 60.0)
                log(f"{sessions} session(s) x {args.utterances} utterances")
                level = measure_level(server, pool, sessions, args)
                levels.append(level)
                log(
                    f"x{sessions}: {len(level.turns)}/{level.attempted} answered in "
                    f"{level.wall_s:.0f} s, v2v p50 {pair(level.values('v2v_ms'))[0]} ms"
                )
            log("stopping theo serve")
        log("raw engines")
        raw = time_raw_engines(models_dir / STT_MODEL, models_dir / TTS_MODEL, pool, args)
        report(levels, raw, pool, args)
        if args.json:
            dump_json(args.json, levels, raw)
        failed = False
    finally:
        if failed or args.keep_temp:
            log(f"server log and temp files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
