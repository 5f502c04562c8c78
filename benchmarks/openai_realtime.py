"""OpenAI Realtime adapter benchmark: what ``WS /v1/realtime`` in OpenAI's protocol adds.

``WS /v1/realtime`` speaks two protocols on one session core: Theo's own (JSON control
events, binary PCM16 frames) and OpenAI's Realtime transcription protocol (base64
``input_audio_buffer.append`` events, ``conversation.item.input_audio_transcription.*``
events). This script times the same audio through both, on one server, one session at a
time, so the difference is the adapter: the base64 and JSON of every append, the event
translation, and the official ``openai`` SDK's own work on the client (its typed events
are parsed before the script sees them).

One run of this script:

1. installs the model with ``theo pull`` into a temporary ``THEO_HOME`` (or uses
   ``--theo-home``) and starts ``theo serve`` on a free port with only that model (a
   temporary models directory of a symlink), then waits for ``GET /health`` to say ``ok``
   and for the API process to go idle;
2. reads the clip (16 kHz) and resamples it once to 24 kHz PCM16 with ``soxr``, so both
   protocols get byte-identical audio (24 kHz is the OpenAI protocol's PCM rate; Theo's
   sessions are told ``session.configure input_sample_rate 24000``);
3. streams ``--warmup-seconds`` of the clip in one untimed session per protocol, then
   ``--rounds`` pairs of sessions, ``theo, openai, theo, openai, ...``, never two at once
   (waiting for the server to go idle before each): every session streams the whole clip
   at real-time pace in 50 ms chunks (2400 samples; binary frames for Theo, base64 appends
   for OpenAI, on the same absolute schedule) followed by ``--tail-silence`` seconds of
   digital silence. Every chunk's send time and every event's arrival time are recorded on
   one monotonic clock;
4. prints one table and the adapter overhead against the target;
5. stops the server (SIGTERM, then wait) whatever happens.

Usage (from the repository root)::

    .venv/bin/python benchmarks/openai_realtime.py
    .venv/bin/python benchmarks/openai_realtime.py --rounds 5 --theo-home ~/.theo

Set ``THEO_DOWNLOAD_CACHE_DIR`` (and ``HF_HUB_OFFLINE=1`` without network) to reuse
downloads when the script pulls the model itself.

The Theo client is the one of ``benchmarks/streaming.py`` (``?model=...&language=...``,
``session.configure``, binary frames, ``session.close``, wait for ``session.closed``). The
OpenAI client is ``AsyncOpenAI(...).realtime.connect(extra_query={"intent":
"transcription"})`` with ``session.update`` (``type: transcription``, ``audio/pcm`` at
24000 Hz, the model, ``language``, ``turn_detection: server_vad`` without numbers, so
Theo's VAD defaults apply to both). The OpenAI session never closes by itself: after the
silence the client waits until it has one ``...transcription.completed`` per
``input_audio_buffer.speech_started`` and leaves.

What is measured, per utterance (the audio timestamps of both protocols are milliseconds of
session audio since the session's first audio, so the client knows which chunk carried
them; ``sent(t)`` is the send time of the 50 ms chunk holding the audio at ``t`` ms):

* **first text**: arrival of the first text minus ``sent(speech start)``, the start being
  ``vad.speech_start.timestamp_ms`` (Theo) / ``speech_started.audio_start_ms`` (OpenAI).
  The first text is the first ``transcript.partial`` (Theo) / first ``...transcription.delta``
  (OpenAI). The OpenAI adapter sends a last delta just before ``completed`` when no text was
  agreed while the user spoke, so its first delta can be that one; a Theo utterance without a
  partial likewise counts its ``transcript.final`` as its first text.
* **final**: arrival of ``transcript.final`` (Theo) / ``...transcription.completed`` (OpenAI)
  minus ``sent(speech end - 1 ms)`` (the chunk holding the last speech audio, as
  ``streaming.py`` measures), the end being ``vad.speech_end.timestamp_ms`` (Theo; it arrives
  after the final, so this is computed after the session) / ``speech_stopped.audio_end_ms``
  (OpenAI). It includes the VAD's 300 ms minimum silence.
* **text before end**: utterances with at least one partial before their final (Theo) /
  at least one delta before their ``speech_stopped`` (OpenAI).
* **deltas prefix**: OpenAI items whose concatenated deltas are a prefix of their
  ``completed`` transcript (and how many equal it).
* **WER**: each session's finals / completed transcripts joined, against ``CLIP.txt`` next to
  the clip, normalised as the tests do (``tests/helpers/wer.py``); the mean over sessions.
* **adapter overhead**: OpenAI p50 minus Theo p50, for both latencies (and, as a check, the
  median of the per-utterance differences between each OpenAI session and the Theo session
  before it, utterances matched by their speech start). Target: <= 20 ms at p50.

Progress goes to stderr, the table to stdout, the server's output to ``theo.log`` in the
temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import soxr
import websockets
from harness import log, model_links, percentile
from openai import AsyncOpenAI
from openai.types.realtime import (
    AudioTranscriptionParam,
    RealtimeTranscriptionSessionCreateRequestParam,
)
from streaming import CpuMeter, print_table, wait_idle

from tests.helpers.audio import read_wav
from tests.helpers.server import TEST_CACHE, RunningServer, start_server
from tests.helpers.wer import wer

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CLIP = REPO_ROOT / "tests" / "fixtures" / "audio" / "en_librivox.wav"
DEFAULT_MODEL = "faster-whisper-tiny.en"
RATE: Final = 24_000  # the OpenAI protocol's PCM16 rate; Theo's sessions are set to it
CHUNK_MS = 50
CHUNK_BYTES = RATE * CHUNK_MS // 1000 * 2  # 2400 samples of PCM16
TARGET_OVERHEAD_MS = 20.0
_TRANSCRIPTION = "conversation.item.input_audio_transcription"

Events = list[tuple[float, dict[str, Any]]]


# --------------------------------------------------------------------------- the clip


def load_clip_24k(path: Path) -> bytes:
    """The clip as 24 kHz mono PCM16 LE, resampled once with soxr."""
    samples, rate = read_wav(path)
    if rate == RATE:
        same: bytes = samples.astype("<i2").tobytes()
        return same
    resampled = soxr.resample(samples.astype(np.float32) / 32768.0, rate, RATE, quality="HQ")
    pcm: bytes = np.clip(np.round(resampled * 32768.0), -32768, 32767).astype("<i2").tobytes()
    return pcm


# --------------------------------------------------------------------------- sessions


@dataclass
class Trace:
    """What one session sent and received, on the benchmark's monotonic clock."""

    protocol: str
    send_times: list[float] = field(default_factory=list)  # one per 50 ms chunk
    events: Events = field(default_factory=list)
    failure: str | None = None
    wall_s: float = 0.0
    theo_cores: float = 0.0
    other_cores: float | None = None

    def sent_at_ms(self, audio_ms: float) -> float:
        """When the chunk holding the audio at ``audio_ms`` (session clock) left the client."""
        index = int(max(audio_ms, 0.0) // CHUNK_MS)
        return self.send_times[min(index, len(self.send_times) - 1)]

    def of(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        return [(at, event) for at, event in self.events if event.get("type") == kind]


async def paced(
    chunks: list[bytes], send: Callable[[bytes], Awaitable[None]], trace: Trace
) -> None:
    """Send ``chunks`` at real-time pace on an absolute schedule, recording each send time."""
    started = time.monotonic()
    for index, chunk in enumerate(chunks):
        await send(chunk)
        trace.send_times.append(time.monotonic())
        due = started + (index + 1) * CHUNK_MS / 1000.0
        await asyncio.sleep(max(0.0, due - time.monotonic()))


def chunked(pcm: bytes) -> list[bytes]:
    return [pcm[offset : offset + CHUNK_BYTES] for offset in range(0, len(pcm), CHUNK_BYTES)]


async def theo_session(
    base_url: str, model: str, language: str | None, pcm: bytes, timeout_s: float
) -> Trace:
    """Theo's protocol: configure 24 kHz, binary chunks, ``session.close``, ``session.closed``."""
    trace = Trace("theo")
    url = base_url.replace("http://", "ws://") + f"/v1/realtime?model={model}"
    if language:
        url += f"&language={language}"
    try:
        async with websockets.connect(url, max_size=None, open_timeout=60) as ws:
            trace.events.append(
                (time.monotonic(), json.loads(await asyncio.wait_for(ws.recv(), 60)))
            )
            await ws.send(json.dumps({"type": "session.configure", "input_sample_rate": RATE}))
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 30))
                trace.events.append((time.monotonic(), event))
                if event.get("type") == "session.updated":
                    break
                if event.get("type") == "error":
                    raise RuntimeError(f"session.configure refused: {event}")

            async def receive() -> None:
                async for message in ws:
                    event = json.loads(message)
                    trace.events.append((time.monotonic(), event))
                    if event.get("type") == "session.closed":
                        return

            receiver = asyncio.create_task(receive())
            await paced(chunked(pcm), ws.send, trace)
            await ws.send(json.dumps({"type": "session.close"}))
            await asyncio.wait_for(receiver, timeout_s)
    except (OSError, TimeoutError, RuntimeError, websockets.WebSocketException) as exc:
        trace.failure = f"{type(exc).__name__}: {exc}"
    return trace


async def openai_session(
    base_url: str, model: str, language: str | None, pcm: bytes, timeout_s: float
) -> Trace:
    """OpenAI's protocol through the official SDK; leaves once every turn is completed."""
    trace = Trace("openai")
    client = AsyncOpenAI(
        base_url=f"{base_url}/v1",
        websocket_base_url=base_url.replace("http://", "ws://") + "/v1",
        api_key="unused",
    )
    transcription: AudioTranscriptionParam = {"model": model}
    if language:
        transcription["language"] = language
    counts = {"started": 0, "completed": 0}
    updated = asyncio.Event()
    try:
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:

            async def receive() -> None:
                async for event in conn:
                    arrival = time.monotonic()
                    trace.events.append((arrival, event.model_dump()))
                    if event.type == "session.updated":
                        updated.set()
                    elif event.type == "input_audio_buffer.speech_started":
                        counts["started"] += 1
                    elif event.type == f"{_TRANSCRIPTION}.completed":
                        counts["completed"] += 1

            receiver = asyncio.create_task(receive())
            try:
                session: RealtimeTranscriptionSessionCreateRequestParam = {
                    "type": "transcription",
                    "audio": {
                        "input": {
                            "format": {"type": "audio/pcm", "rate": RATE},
                            "transcription": transcription,
                            "turn_detection": {"type": "server_vad"},
                        }
                    },
                }
                await conn.session.update(session=session)
                await asyncio.wait_for(updated.wait(), 30)

                async def append(chunk: bytes) -> None:
                    await conn.input_audio_buffer.append(audio=base64.b64encode(chunk).decode())

                await paced(chunked(pcm), append, trace)
                deadline = time.monotonic() + timeout_s
                while counts["completed"] < counts["started"] or not counts["started"]:
                    if receiver.done():
                        receiver.result()  # the connection ended: raise its error
                        raise RuntimeError("the server closed the connection")
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"{counts['completed']} completed of {counts['started']} turns"
                        )
                    await asyncio.sleep(0.01)
            finally:
                receiver.cancel()
                await asyncio.gather(receiver, return_exceptions=True)
    except Exception as exc:  # recorded and reported; the run goes on
        trace.failure = f"{type(exc).__name__}: {exc}"
    finally:
        await client.close()
    return trace


# --------------------------------------------------------------------------- analysis


@dataclass
class Utterance:
    start_ms: int
    first_text_ms: float | None
    final_ms: float | None
    text_before_end: bool
    final_text: str
    deltas_prefix: bool | None = None  # OpenAI only
    deltas_whole: bool | None = None


@dataclass
class SessionResult:
    protocol: str
    utterances: list[Utterance]
    errors: list[str]
    missing_finals: int
    wer: float | None


def analyse_theo(trace: Trace, reference: str | None) -> SessionResult:
    starts: dict[int, int] = {}
    ends: dict[int, int] = {}
    partials: dict[int, list[float]] = {}
    finals: dict[int, tuple[float, str]] = {}
    errors = [trace.failure] if trace.failure else []
    for arrival, event in trace.events:
        kind = event.get("type")
        segment = int(event.get("segment_id", 0))
        if kind == "vad.speech_start":
            starts[segment] = int(event["timestamp_ms"])
        elif kind == "vad.speech_end":
            ends[segment] = int(event["timestamp_ms"])
        elif kind == "transcript.partial" and segment not in finals:
            partials.setdefault(segment, []).append(arrival)
        elif kind == "transcript.final":
            finals[segment] = (arrival, str(event.get("text", "")))
        elif kind == "error":
            errors.append(f"{event.get('code')}: {event.get('message')}")
    utterances: list[Utterance] = []
    for segment in sorted(starts):
        if segment not in finals:
            continue
        final_at, text = finals[segment]
        first_at = partials[segment][0] if segment in partials else final_at
        final_ms = None
        if segment in ends:
            final_ms = (final_at - trace.sent_at_ms(ends[segment] - 1)) * 1000
        utterances.append(
            Utterance(
                start_ms=starts[segment],
                first_text_ms=(first_at - trace.sent_at_ms(starts[segment])) * 1000,
                final_ms=final_ms,
                text_before_end=segment in partials,
                final_text=text,
            )
        )
    text = " ".join(u.final_text for u in utterances if u.final_text)
    return SessionResult(
        "theo",
        utterances,
        errors,
        missing_finals=sum(1 for s in starts if s not in finals),
        wer=wer(reference, text, allow_empty=True) if reference else None,
    )


def analyse_openai(trace: Trace, reference: str | None) -> SessionResult:
    order: list[str] = []
    starts: dict[str, int] = {}
    stops: dict[str, tuple[float, int]] = {}
    deltas: dict[str, list[tuple[float, str]]] = {}
    completed: dict[str, tuple[float, str]] = {}
    errors = [trace.failure] if trace.failure else []
    for arrival, event in trace.events:
        kind = event.get("type")
        item = str(event.get("item_id", ""))
        if kind == "input_audio_buffer.speech_started":
            order.append(item)
            starts[item] = int(event["audio_start_ms"])
        elif kind == "input_audio_buffer.speech_stopped":
            stops[item] = (arrival, int(event["audio_end_ms"]))
        elif kind == f"{_TRANSCRIPTION}.delta":
            deltas.setdefault(item, []).append((arrival, str(event.get("delta", ""))))
        elif kind == f"{_TRANSCRIPTION}.completed":
            completed[item] = (arrival, str(event.get("transcript", "")))
        elif kind == "error":
            errors.append(f"error: {json.dumps(event.get('error'))}")
        elif kind == f"{_TRANSCRIPTION}.failed":
            errors.append(f"failed: {json.dumps(event.get('error'))}")
    utterances: list[Utterance] = []
    for item in order:
        if item not in completed:
            continue
        done_at, transcript = completed[item]
        item_deltas = deltas.get(item, [])
        first_at = item_deltas[0][0] if item_deltas else None
        final_ms = before_stop = None
        if item in stops:
            stop_at, end_ms = stops[item]
            final_ms = (done_at - trace.sent_at_ms(end_ms - 1)) * 1000
            before_stop = any(at < stop_at for at, _ in item_deltas)
        joined = "".join(delta for _, delta in item_deltas)
        utterances.append(
            Utterance(
                start_ms=starts[item],
                first_text_ms=(
                    None if first_at is None else (first_at - trace.sent_at_ms(starts[item])) * 1000
                ),
                final_ms=final_ms,
                text_before_end=bool(before_stop),
                final_text=transcript,
                deltas_prefix=transcript.startswith(joined),
                deltas_whole=joined == transcript,
            )
        )
    text = " ".join(u.final_text for u in utterances if u.final_text)
    return SessionResult(
        "openai",
        utterances,
        errors,
        missing_finals=sum(1 for item in order if item not in completed),
        wer=wer(reference, text, allow_empty=True) if reference else None,
    )


def paired_differences(
    theo: list[SessionResult], openai: list[SessionResult], name: str
) -> list[float]:
    """OpenAI minus Theo, per utterance, each OpenAI session against the Theo one before it."""
    differences: list[float] = []
    for theo_session_result, openai_session_result in zip(theo, openai, strict=False):
        for utterance in openai_session_result.utterances:
            value = getattr(utterance, name)
            match = min(
                theo_session_result.utterances,
                key=lambda u: abs(u.start_ms - utterance.start_ms),
                default=None,
            )
            if match is None or abs(match.start_ms - utterance.start_ms) > 100:
                continue
            other = getattr(match, name)
            if value is not None and other is not None:
                differences.append(value - other)
    return differences


# --------------------------------------------------------------------------- output


def values(results: list[SessionResult], name: str) -> list[float]:
    found = (getattr(u, name) for r in results for u in r.utterances)
    return [value for value in found if value is not None]


def p(values_ms: list[float], fraction: float) -> str:
    return f"{percentile(values_ms, fraction):.0f}" if values_ms else "-"


def report(results: dict[str, list[SessionResult]], traces: list[Trace], model: str) -> None:
    rows: list[list[str]] = []
    for protocol in ("theo", "openai"):
        sessions = results[protocol]
        first = values(sessions, "first_text_ms")
        final = values(sessions, "final_ms")
        wers = [r.wer for r in sessions if r.wer is not None]
        rows.append(
            [
                protocol,
                str(len(sessions)),
                str(sum(len(r.utterances) for r in sessions)),
                p(first, 0.5),
                p(first, 0.9),
                p(final, 0.5),
                p(final, 0.9),
                f"{statistics.fmean(wers) * 100:.1f}%" if wers else "-",
            ]
        )
    print()
    print(
        f"{model}, {CHUNK_MS} ms chunks of 24 kHz PCM16 at real-time pace, one session at a "
        f"time; latencies in ms over every utterance of every timed session"
    )
    print_table(
        [
            "protocol",
            "sessions",
            "utterances",
            "first text p50",
            "p90",
            "final p50",
            "p90",
            "WER",
        ],
        rows,
    )
    print()
    theo, openai = results["theo"], results["openai"]
    for protocol, sessions in results.items():
        per_session = ", ".join("-" if r.wer is None else f"{r.wer * 100:.1f}%" for r in sessions)
        utts = sum(len(r.utterances) for r in sessions)
        before = sum(u.text_before_end for r in sessions for u in r.utterances)
        what = (
            "a partial before the final" if protocol == "theo" else "a delta before speech_stopped"
        )
        print(f"{protocol}: WER per session {per_session}; {before}/{utts} utterances had {what}")
    items = [u for r in openai for u in r.utterances]
    prefix = sum(1 for u in items if u.deltas_prefix)
    whole = sum(1 for u in items if u.deltas_whole)
    print(
        f"openai: concatenated deltas a prefix of the completed transcript in "
        f"{prefix}/{len(items)} items (equal to it in {whole})"
    )
    other = [t.other_cores for t in traces if t.other_cores is not None]
    if other:
        print(f"other processes' cores during the sessions: max {max(other):.2f} (noisy if > 0.2)")
    problems = [(r.protocol, e) for rs in results.values() for r in rs for e in r.errors]
    problems += [
        (r.protocol, f"{r.missing_finals} utterance(s) without a final")
        for rs in results.values()
        for r in rs
        if r.missing_finals
    ]
    for protocol, problem in problems:
        print(f"PROBLEM {protocol}: {problem}")
    print()
    met = True
    for label, name in (("first text", "first_text_ms"), ("final", "final_ms")):
        theo_values, openai_values = values(theo, name), values(openai, name)
        if not theo_values or not openai_values:
            print(f"adapter overhead, {label}: NOT MEASURED")
            met = False
            continue
        overhead = percentile(openai_values, 0.5) - percentile(theo_values, 0.5)
        paired = paired_differences(theo, openai, name)
        paired_text = (
            f"; paired per-utterance median {statistics.median(paired):+.0f} ms (n={len(paired)})"
            if paired
            else ""
        )
        print(f"adapter overhead, {label}: openai p50 - theo p50 = {overhead:+.0f} ms{paired_text}")
        met = met and overhead <= TARGET_OVERHEAD_MS
    met = met and not problems
    verdict = "MET" if met else "NOT MET"
    print(f"target: adapter adds <= {TARGET_OVERHEAD_MS:.0f} ms at p50: {verdict}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time the same audio through Theo's and OpenAI's realtime protocols."
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="catalog STT model")
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="WAV to stream")
    parser.add_argument("--rounds", type=int, default=3, help="timed (theo, openai) pairs")
    parser.add_argument("--language", default="en", help="session language ('' for none)")
    parser.add_argument(
        "--theo-home",
        type=Path,
        default=None,
        help="existing THEO_HOME (the model is pulled there if missing); default: a temporary one",
    )
    parser.add_argument(
        "--tail-silence", type=float, default=1.5, help="seconds of silence after the clip"
    )
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=8.0,
        help="audio streamed in one untimed session per protocol first (0: none)",
    )
    parser.add_argument("--startup-timeout", type=float, default=300.0, help="seconds")
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temporary directory and server log"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.tail_silence < 0.5:
        parser.error("--rounds must be >= 1 and --tail-silence >= 0.5 (the VAD needs silence)")
    return args


Session = Callable[[str, str, str | None, bytes, float], Coroutine[Any, Any, Trace]]
SESSIONS: dict[str, Session] = {"theo": theo_session, "openai": openai_session}


def run_one(
    server: RunningServer,
    theo_pids: list[int],
    protocol: str,
    args: argparse.Namespace,
    pcm: bytes,
) -> Trace:
    """One session of ``protocol`` after the server went idle, with the CPU it took."""
    wait_idle(server.process.pid, 60.0)
    meter = CpuMeter(theo_pids)
    meter.start()
    began = time.perf_counter()
    timeout_s = 120.0
    language: str | None = args.language or None
    trace = asyncio.run(SESSIONS[protocol](server.base_url, args.model, language, pcm, timeout_s))
    trace.wall_s = time.perf_counter() - began
    trace.theo_cores, trace.other_cores = meter.stop()
    return trace


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    clip = args.clip.resolve()
    pcm = load_clip_24k(clip)
    reference_path = clip.with_suffix(".txt")
    reference = (
        reference_path.read_text(encoding="utf-8").strip() if reference_path.exists() else None
    )
    tail = b"\x00\x00" * round(args.tail_silence * RATE)
    payload = pcm + tail
    log(
        f"clip {clip.name}: {len(pcm) / 2 / RATE:.2f} s at {RATE} Hz "
        f"(+{args.tail_silence:.1f} s silence, {len(chunked(payload))} chunks of {CHUNK_MS} ms)"
    )
    workdir = Path(tempfile.mkdtemp(prefix="theo-openai-bench-"))
    log_path = workdir / "theo.log"
    server: RunningServer | None = None
    failed = True
    try:
        home, models_dir = model_links(args.theo_home, workdir, (args.model,), log_path)
        extra_env: dict[str, str] = {}
        if args.theo_home is None:
            # A fresh home would compile the NeMo ITN grammars again (when installed).
            extra_env["THEO_ITN_CACHE_DIR"] = str(TEST_CACHE / "itn")
        log("starting theo serve")
        server = start_server(home, log_path, models_dir, extra_env)
        health = server.wait_ready(args.startup_timeout)
        theo_pids = [server.process.pid, *(int(w["pid"]) for w in health.get("workers", []))]
        log(f"server healthy; idle after {wait_idle(server.process.pid, 120.0):.1f} s more")

        if args.warmup_seconds > 0:
            warm = pcm[: round(args.warmup_seconds * RATE) * 2] + tail
            for protocol in SESSIONS:
                trace = run_one(server, theo_pids, protocol, args, warm)
                log(f"warm-up {protocol}: {len(trace.events)} events, failure {trace.failure}")

        traces: list[Trace] = []
        results: dict[str, list[SessionResult]] = {"theo": [], "openai": []}
        for round_index in range(args.rounds):
            for protocol in SESSIONS:
                trace = run_one(server, theo_pids, protocol, args, payload)
                traces.append(trace)
                analyse = analyse_theo if protocol == "theo" else analyse_openai
                result = analyse(trace, reference)
                results[protocol].append(result)
                first = [u.first_text_ms for u in result.utterances if u.first_text_ms is not None]
                final = [u.final_ms for u in result.utterances if u.final_ms is not None]
                log(
                    f"round {round_index + 1} {protocol}: {trace.wall_s:.1f} s, "
                    f"{len(result.utterances)} utterances, first text {[round(v) for v in first]}, "
                    f"final {[round(v) for v in final]}, other cpu {trace.other_cores}, "
                    f"errors {result.errors or 'none'}"
                )
                log(f"  text: {' | '.join(u.final_text for u in result.utterances)!r}")
        report(results, traces, args.model)
        failed = False
    finally:
        if server is not None:
            log("stopping theo serve")
            server.stop()
        if failed or args.keep_temp:
            log(f"server log and temp files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
