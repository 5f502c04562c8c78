"""Soak benchmark: one long realtime session, memory and latency over time.

One run of this script:

1. installs the model with ``theo pull`` into a temporary ``THEO_HOME`` (or uses
   ``--theo-home``), starts ``theo serve`` on a free port with only that model and waits
   for ``GET /health`` to say ``ok``;
2. opens ONE WebSocket session and streams ``--minutes`` of audio through it: the clip
   (``en_librivox.wav`` by default: five utterances) repeated with 0.6 s gaps, in 20 ms
   PCM16 frames at ``--speed`` x real time (1 by default; at most 4). Above real time the
   server is started with ``THEO_SESSION__MAX_BACKLOG_S`` covering the whole run, so
   backpressure asks the client to slow down (``session.rate_limit``, ignored here) but
   drops nothing;
3. every ``--sample-interval`` seconds (10 by default) records the resident memory (RSS,
   from ``/proc``) of the server process and of the worker process (its pid from
   ``GET /health``);
4. for every final records its **final delay**: arrival time minus the send time of the
   frame holding the audio at the segment's ``vad.speech_end`` (what a user waits after
   they stop talking, including the VAD's 300 ms of silence, at 1/speed);
5. prints a table per time window and the verdict: **RSS growth** (mean of the last third
   of the samples minus mean of the first third after ``--warmup-minutes``, per process)
   and **latency drift** (mean final delay of the last ``--window-minutes`` of audio over
   the mean of the first window after warm-up, minus 1). Targets: growth <= 5 MB, drift
   <= 20 %. The finals' WER against the clip's reference text is a sanity check.

Usage (from the repository root)::

    .venv/bin/python benchmarks/soak.py                      # 30 min of audio at 1x
    .venv/bin/python benchmarks/soak.py --minutes 30 --speed 4
    .venv/bin/python benchmarks/soak.py --minutes 2 --speed 4 --sample-interval 2 \\
        --warmup-minutes 0.5 --window-minutes 0.5 --json out.json   # the test suite's run

Progress goes to stderr, the tables to stdout, the server's log to ``theo.log`` in the
temporary directory (kept with ``--keep``). Exit code 1 when a target is missed and
``--check`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import statistics
import sys
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from harness import ensure_model, log, percentile

from tests.helpers.memory import status_kb
from tests.helpers.server import RunningServer, start_server
from tests.helpers.wer import wer

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CLIP = REPO_ROOT / "tests" / "fixtures" / "audio" / "en_librivox.wav"
DEFAULT_MODEL = "faster-whisper-tiny.en"
FRAME_MS = 20
REPEAT_GAP_S = 0.6
TARGET_RSS_GROWTH_MB = 5.0
TARGET_DRIFT = 0.20


@dataclass
class Sample:
    """Memory of the server and the worker at one moment of the run."""

    wall_s: float
    audio_s: float
    server_mb: float | None
    worker_mb: float | None
    worker_pid: int | None
    load1: float | None = None
    """The machine's 1-minute load average: other work on a shared machine skews latency."""


@dataclass
class Final:
    """One final: where it lies in the audio and how long the client waited for it."""

    segment_id: int
    audio_end_s: float
    delay_s: float
    text: str


@dataclass
class Run:
    """Everything one soak run observed."""

    samples: list[Sample] = field(default_factory=list)
    finals: list[Final] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    audio_s: float = 0.0
    wall_s: float = 0.0
    closed_reason: str | None = None


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of ``pid`` in MB (None when it is gone or /proc is absent)."""
    if pid is None:
        return None
    try:
        return status_kb(pid, "VmRSS") / 1024
    except (OSError, RuntimeError):
        return None


def load_average() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def worker_pid(base_url: str, model: str) -> int | None:
    try:
        health = httpx.get(f"{base_url}/health", timeout=5.0).json()
    except (httpx.HTTPError, ValueError):
        return None
    for worker in health.get("workers", []):
        if worker.get("model") == model:
            pid = worker.get("pid")
            return int(pid) if pid else None
    return None


def load_audio(path: Path, minutes: float) -> tuple[bytes, int, str | None, int]:
    """The clip repeated (0.6 s apart) until it lasts ``minutes``: PCM16, rate, reference."""
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{path}: use a mono 16-bit WAV")
        rate = wav.getframerate()
        one = wav.readframes(wav.getnframes())
    gap = b"\x00\x00" * round(REPEAT_GAP_S * rate)
    repeats = max(1, -(-round(minutes * 60 * rate * 2) // (len(one) + len(gap))))
    reference_path = path.with_suffix(".txt")
    reference = reference_path.read_text().strip() if reference_path.exists() else None
    return (one + gap) * repeats, rate, reference, repeats


async def stream(url: str, audio: bytes, rate: int, speed: float, run: Run) -> None:
    """Stream ``audio`` at ``speed`` through one session; record finals as they come."""
    frame_bytes = rate * FRAME_MS // 1000 * 2
    ends: dict[int, float] = {}
    async with websockets.connect(url, max_size=None) as ws:
        started = time.monotonic()

        async def receive() -> None:
            async for message in ws:
                event = json.loads(message)
                kind = event["type"]
                run.counts[kind] = run.counts.get(kind, 0) + 1
                if kind == "transcript.final":
                    end_s = ends.pop(event["segment_id"], event["end_ms"] / 1000)
                    delay = time.monotonic() - (started + end_s / speed)
                    run.finals.append(Final(event["segment_id"], end_s, delay, event["text"]))
                elif kind == "vad.speech_end":
                    ends[event["segment_id"]] = event["timestamp_ms"] / 1000
                elif kind == "error":
                    run.errors.append(event)
                elif kind == "session.closed":
                    run.closed_reason = event["reason"]
                    return

        receiver = asyncio.create_task(receive())
        for index in range(0, len(audio), frame_bytes):
            await ws.send(audio[index : index + frame_bytes])
            run.audio_s = (index + frame_bytes) / (rate * 2)
            # Pacing the sender like a microphone (at ``speed``).
            due = started + run.audio_s / speed
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        await ws.send(json.dumps({"type": "session.close"}))
        await asyncio.wait_for(receiver, 300)
        run.wall_s = time.monotonic() - started


async def sample_memory(
    run: Run, base_url: str, model: str, server_pid: int, interval_s: float
) -> None:
    """Every ``interval_s``: the RSS of the server and of the model's worker."""
    started = time.monotonic()
    while True:
        pid = await asyncio.to_thread(worker_pid, base_url, model)
        wall_s = time.monotonic() - started
        run.samples.append(
            Sample(wall_s, run.audio_s, rss_mb(server_pid), rss_mb(pid), pid, load_average())
        )
        if len(run.samples) % 6 == 1:
            last = run.samples[-1]
            log(
                f"{run.audio_s / 60:5.1f} min audio, {wall_s / 60:5.1f} min wall, "
                f"server {last.server_mb or 0:.1f} MB, worker {last.worker_mb or 0:.1f} MB, "
                f"{len(run.finals)} finals"
            )
        await asyncio.sleep(interval_s)


async def soak(
    url: str, audio: bytes, rate: int, args: argparse.Namespace, server: RunningServer
) -> Run:
    """The session and the memory sampler, side by side."""
    run = Run()
    sampler = asyncio.create_task(
        sample_memory(run, server.base_url, args.model, server.process.pid, args.sample_interval)
    )
    try:
        await stream(url, audio, rate, args.speed, run)
    finally:
        sampler.cancel()
    await sample_once(run, server, args.model)
    return run


async def sample_once(run: Run, server: RunningServer, model: str) -> None:
    """A last sample once the session is over."""
    pid = await asyncio.to_thread(worker_pid, server.base_url, model)
    last_wall = run.samples[-1].wall_s if run.samples else 0.0
    run.samples.append(Sample(last_wall, run.audio_s, rss_mb(server.process.pid), rss_mb(pid), pid))


def growth_mb(samples: list[Sample], attr: str, after_audio_s: float) -> float | None:
    """Mean of the last third of the samples after warm-up minus mean of the first third.

    Thirds rather than single samples: the worker's RSS swings by ~30 MB as CTranslate2
    caches and frees buffers, while a leak moves the whole level.
    """
    thirds = _outer_thirds(samples, attr, after_audio_s)
    return None if thirds is None else statistics.mean(thirds[1]) - statistics.mean(thirds[0])


def floor_growth_mb(samples: list[Sample], attr: str, after_audio_s: float) -> float | None:
    """Lowest sample of the last third after warm-up minus the lowest of the first third.

    The memory a process keeps between its swings: at 4x real time the server's RSS saws
    by ~15-20 MB within 20 s of wall time (freed memory given back to the system in steps;
    not cyclic garbage: the collector found next to none with ``gc.DEBUG_SAVEALL``), so
    the means of a short run's thirds differ by that much either way, while a leak lifts
    the floor too. 6 minutes at 4x: the floor stayed at 266-271 MB.
    """
    thirds = _outer_thirds(samples, attr, after_audio_s)
    return None if thirds is None else min(thirds[1]) - min(thirds[0])


def _outer_thirds(
    samples: list[Sample], attr: str, after_audio_s: float
) -> tuple[list[float], list[float]] | None:
    """The first and last third of the ``attr`` samples after warm-up (None: under 6)."""
    values = [getattr(s, attr) for s in samples if s.audio_s >= after_audio_s and getattr(s, attr)]
    if len(values) < 6:
        return None
    third = len(values) // 3
    return values[:third], values[-third:]


def drift(finals: list[Final], warmup_s: float, window_s: float, total_s: float) -> float | None:
    """Mean final delay of the last window over that of the first window after warm-up."""
    first = [f.delay_s for f in finals if warmup_s <= f.audio_end_s < warmup_s + window_s]
    last = [f.delay_s for f in finals if f.audio_end_s >= total_s - window_s]
    if not first or not last:
        return None
    return statistics.mean(last) / statistics.mean(first) - 1.0


def _cell(values: list[float], fmt: str = "{:.0f}") -> str:
    return fmt.format(values[-1]) if values else "-"


def print_report(run: Run, args: argparse.Namespace, result: dict[str, Any]) -> None:
    window_s = args.window_minutes * 60
    print(
        f"\nSoak: {run.audio_s / 60:.1f} min of audio at {args.speed:g}x real time in one "
        f"session ({run.wall_s / 60:.1f} min wall), {args.model}, RSS every "
        f"{args.sample_interval:g} s\n"
    )
    print(
        "| audio (min) | finals | final delay p50 / p90 (ms) | server RSS (MB) "
        "| worker RSS (MB) | load avg |"
    )
    print("|---|---|---|---|---|---|")
    start = 0.0
    while start < run.audio_s:
        end = min(start + window_s, run.audio_s)
        delays = [f.delay_s * 1000 for f in run.finals if start <= f.audio_end_s < end]
        window = [s for s in run.samples if start <= s.audio_s <= end]
        latency = (
            f"{percentile(delays, 0.5):.0f} / {percentile(delays, 0.9):.0f}" if delays else "-"
        )
        server = _cell([s.server_mb for s in window if s.server_mb], "{:.1f}")
        worker = _cell([s.worker_mb for s in window if s.worker_mb], "{:.1f}")
        loads = [s.load1 for s in window if s.load1 is not None]
        load = f"{statistics.mean(loads):.1f}" if loads else "-"
        print(
            f"| {start / 60:.1f}-{end / 60:.1f} | {len(delays)} | {latency} | {server} "
            f"| {worker} | {load} |"
        )
        start = end
    print()
    for key, label, target in (
        (
            "server_rss_growth_mb",
            "server RSS growth after warm-up",
            f"<= {TARGET_RSS_GROWTH_MB:g} MB",
        ),
        (
            "worker_rss_growth_mb",
            "worker RSS growth after warm-up",
            f"<= {TARGET_RSS_GROWTH_MB:g} MB",
        ),
        ("latency_drift", "final-delay drift, last vs first window", f"<= {TARGET_DRIFT:.0%}"),
    ):
        value = result[key]
        if value is None:
            shown = "n/a"
        elif key == "latency_drift":
            shown = f"{value:+.1%}"
        else:
            shown = f"{value:+.2f} MB"
        print(
            f"- {label}: {shown} (target {target}): {'MISSED' if key in result['missed'] else 'ok'}"
        )
    floors = [result[f"{name}_rss_floor_growth_mb"] for name in ("server", "worker")]
    print(
        "- RSS floor growth (lowest sample, last third vs first): "
        + ", ".join(
            f"{name} {'n/a' if value is None else f'{value:+.2f} MB'}"
            for name, value in zip(("server", "worker"), floors, strict=True)
        )
    )
    wer = "n/a" if result["wer"] is None else f"{result['wer']:.3f}"
    print(
        f"- {len(run.finals)} finals (ids in order: {result['segment_ids_in_order']}), "
        f"WER vs reference {wer}, final delay p50 {result['final_delay_p50_ms'] or 0:.0f} ms, "
        f"{len(run.errors)} errors, {run.counts.get('session.rate_limit', 0)} rate_limit and "
        f"{run.counts.get('session.frames_dropped', 0)} frames_dropped events, "
        f"{result['worker_pids']} worker pid(s), closed: {run.closed_reason}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="audio to stream")
    parser.add_argument("--speed", type=float, default=1.0, help="x real time, 1-4")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="mono 16-bit WAV")
    parser.add_argument("--theo-home", type=Path, help="reuse installed models (else a temp home)")
    parser.add_argument("--sample-interval", type=float, default=10.0, help="RSS sampling, s")
    parser.add_argument("--warmup-minutes", type=float, default=2.0, help="of audio")
    parser.add_argument("--window-minutes", type=float, default=5.0, help="of audio")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if not 1.0 <= args.speed <= 4.0:
        parser.error("--speed must be between 1 and 4")

    # A SIGTERM ends the run like Ctrl+C does: the server is still stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="theo-soak-"))
    home = args.theo_home or workdir / "home"
    log_path = workdir / "theo.log"
    ensure_model(home, args.model, log_path)
    models_dir = workdir / "models"
    models_dir.mkdir()
    (models_dir / args.model).symlink_to(home / "models" / args.model)
    audio, rate, reference, repeats = load_audio(args.clip, args.minutes)
    extra_env = {"THEO_LOG_FORMAT": "json"}
    if args.speed > 1.0:
        # Faster than real time on purpose: backpressure must not drop the soak's audio.
        extra_env["THEO_SESSION__MAX_BACKLOG_S"] = str(len(audio) / (rate * 2) + 60)
    server: RunningServer | None = None
    try:
        log("starting theo serve")
        server = start_server(home, log_path, models_dir, extra_env)
        server.wait_ready(600)
        url = server.base_url.replace("http://", "ws://") + f"/v1/realtime?model={args.model}"
        log(f"streaming {len(audio) / (rate * 2) / 60:.1f} min at {args.speed:g}x")
        run = asyncio.run(soak(url, audio, rate, args, server))
    finally:
        if server is not None:
            log("stopping theo serve")
            server.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    warmup_s, window_s = args.warmup_minutes * 60, args.window_minutes * 60
    delays_ms = [f.delay_s * 1000 for f in run.finals]
    result: dict[str, Any] = {
        "audio_minutes": run.audio_s / 60,
        "wall_minutes": run.wall_s / 60,
        "speed": args.speed,
        "model": args.model,
        "finals": len(run.finals),
        "segment_ids_in_order": [f.segment_id for f in run.finals]
        == list(range(1, len(run.finals) + 1)),
        "server_rss_growth_mb": growth_mb(run.samples, "server_mb", warmup_s),
        "worker_rss_growth_mb": growth_mb(run.samples, "worker_mb", warmup_s),
        "server_rss_floor_growth_mb": floor_growth_mb(run.samples, "server_mb", warmup_s),
        "worker_rss_floor_growth_mb": floor_growth_mb(run.samples, "worker_mb", warmup_s),
        "latency_drift": drift(run.finals, warmup_s, window_s, run.audio_s),
        "final_delay_p50_ms": percentile(delays_ms, 0.5) if delays_ms else None,
        "wer": wer(" ".join([reference] * repeats), " ".join(f.text for f in run.finals))
        if reference
        else None,
        "errors": len(run.errors),
        "frames_dropped_events": run.counts.get("session.frames_dropped", 0),
        "worker_pids": len({s.worker_pid for s in run.samples if s.worker_pid}),
        "closed_reason": run.closed_reason,
        "samples": [vars(s) for s in run.samples],
        "final_delays": [(f.audio_end_s, f.delay_s) for f in run.finals],
        "final_texts": [(f.segment_id, f.text) for f in run.finals],
    }
    result["missed"] = [
        key
        for key, target in (
            ("server_rss_growth_mb", TARGET_RSS_GROWTH_MB),
            ("worker_rss_growth_mb", TARGET_RSS_GROWTH_MB),
            ("latency_drift", TARGET_DRIFT),
        )
        if result[key] is None or result[key] > target
    ]
    print_report(run, args, result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 1 if args.check and result["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
