"""Chaos benchmark: realtime sessions and batch uploads while the STT worker is SIGKILLed.

One run of this script:

1. installs the model with ``theo pull`` into a temporary ``THEO_HOME`` (or uses
   ``--theo-home``), starts ``theo serve`` with only that model (the soak benchmark's
   set-up) and waits for ``GET /health`` to say ``ok`` and the API process to go idle;
2. optionally runs a **no-fault pass** (``--baseline-loops``): the same number of sessions
   stream the clip with nothing killed, which sets the WER bound of the chaos pass;
3. the **chaos pass**: ``--sessions`` WebSocket sessions, started ``--stagger`` seconds
   apart (by default spread over one loop of the clip, so the kills find each session at
   a different point of an utterance), each streaming the clip ``--loops`` times (0.6 s
   apart) in 20 ms PCM16 frames at ``--speed`` x real time, then ``session.close``.
   Meanwhile the model's worker (its pid from ``GET /health``) is SIGKILLed every
   ``--kill-interval`` seconds, a batch upload goes to ``POST /v1/audio/transcriptions``
   every ``--batch-interval`` seconds, and the RSS of the API process and of the worker
   is sampled every ``--sample-interval`` seconds. With ``--double-kill`` each kill's
   successor is killed too as soon as ``/health`` shows it ready (the sessions are then
   opening new streams and sending their uncommitted audio again); ``--quiet-sessions``
   more sessions speak the clip's first utterance and then stay silent through the kills.
   A kill waits for the worker to be ready and comes at least half an interval after it
   came back; a session opened while the worker restarts is refused (close code 1013)
   and tries again every second;
4. checks the invariants and prints the report (below). Exit code 1 with ``--check``
   when one fails.

The clip must hold utterances separated by at least 0.5 s of digital silence (exact
zeros), as ``tests/fixtures/audio/en_librivox.wav`` does (five utterances): each final is
matched to the utterance its ``start_ms``-``end_ms`` overlaps most.

Invariants (each failure is listed under ``failures`` in the JSON):

* every utterance streamed gets exactly one final (none missing, none matched twice),
  no segment id twice, segment ids strictly increasing in arrival order, as many finals
  as utterances;
* no repeated text (a final equal to, or containing, the previous final), and with
  per-utterance references (the default clip) no final farther than WER 0.5 from its
  utterance; no empty final;
* no session closed by the server (``session.closed`` other than ``client_close``, or
  the socket closed before the client's ``session.close``), no error event other than
  ``worker_crashed``, no frames dropped;
* each session's finals (a quiet session's single utterance excepted) within the WER
  bound of the reference: ``--max-wer``, or the no-fault pass's worst session plus
  ``--wer-margin`` when that is higher;
* every batch answer is 200 (its text within ``--max-wer``) or 503 with ``Retry-After``;
* the worker is ready again (a new pid) after every kill.

Recovery is reported per kill, not checked (timings on a shared machine are noise): the
worker's way back to READY in ``/health``, and per session the ``worker_crashed`` event
and the first final of the resumed segment after it; the server log's
``session_recovered`` seconds too.

Usage (from the repository root)::

    .venv/bin/python benchmarks/chaos.py --check          # 4 sessions, 10 min, kill every 75 s
    .venv/bin/python benchmarks/chaos.py --sessions 3 --loops 3 --kill-interval 30 \\
        --double-kill --quiet-sessions 1 --batch-interval 15 --json out.json --check
                                                           # the test suite's run

Progress goes to stderr, the report to stdout, the server's log to ``theo.log`` in the
work directory (a temporary one removed at the end unless ``--keep``; ``--workdir`` keeps
it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from chaos_checks import (
    DEFAULT_CLIP,
    LOOP_GAP_S,
    MIN_SILENCE_S,
    Clip,
    Trace,
    analyse_kills,
    analyse_session,
    failures_of,
    load_clip,
    print_report,
    read_server_log,
)
from harness import ensure_model, log
from soak import Sample, growth_mb, load_average, rss_mb, worker_pid
from streaming import wait_idle
from websockets.asyncio.client import ClientConnection

from tests.helpers.server import RunningServer, start_server
from tests.helpers.wer import wer

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "faster-whisper-tiny.en"
FRAME_MS = 20
WORKER_BACK_TIMEOUT_S = 120.0
CLOSE_TIMEOUT_S = 180.0


@dataclass
class Kill:
    """One SIGKILL of the worker, and its way back to READY in ``/health``."""

    at_s: float
    pid: int | None
    new_pid: int | None = None
    worker_back_s: float | None = None
    follow_up: bool = False
    """A ``--double-kill``: the worker that had just come back after the kill before."""
    waited_for_ready_s: float = 0.0
    error: str | None = None


@dataclass
class Batch:
    """One batch upload and its answer."""

    at_s: float
    status: int | None
    seconds: float
    retry_after: str | None = None
    code: str | None = None
    wer: float | None = None
    error: str | None = None


# --------------------------------------------------------------------------- the run


@dataclass
class Chaos:
    """Shared state of one pass: its clock, what it did to the server, what it sampled."""

    server: RunningServer
    args: argparse.Namespace
    started: float = field(default_factory=time.monotonic)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    kills: list[Kill] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.started

    async def until(self, at_s: float) -> bool:
        """Sleep until ``at_s`` of the pass; False when the sessions finished first."""
        try:
            await asyncio.wait_for(self.done.wait(), max(0.0, at_s - self.now()))
        except TimeoutError:
            return True
        return False


async def _connect(url: str, trace: Trace) -> ClientConnection | None:
    """Open a session; while the worker restarts (close code 1013) try again, as a client would."""
    deadline = time.monotonic() + WORKER_BACK_TIMEOUT_S
    while True:
        ws = await websockets.connect(url, max_size=None)
        first = json.loads(await ws.recv())
        trace.events.append((time.monotonic(), first))
        if first["type"] == "session.created":
            return ws
        await ws.close()
        if first.get("code") != "model_unavailable" or time.monotonic() > deadline:
            trace.close_code, trace.close_reason = ws.close_code, ws.close_reason or ""
            return None
        trace.events.pop()
        trace.connect_retries += 1
        await asyncio.sleep(1.0)


async def stream_session(
    url: str, clip: Clip, trace: Trace, delay_s: float, tail_s: float, chaos: Chaos
) -> Trace:
    """One session: the clip ``trace.loops`` times at the pace asked (only its first
    ``trace.spoken`` utterances, then silence, when that is set) and ``tail_s`` of
    silence, then ``session.close``."""
    await asyncio.sleep(delay_s)
    gap = b"\x00\x00" * round(LOOP_GAP_S * clip.rate)
    audio = (clip.pcm16 + gap) * trace.loops + bytes(round(tail_s * clip.rate) * 2)
    if trace.spoken is not None:
        spoken = round(clip.spans[trace.spoken - 1][1] * clip.rate) * 2
        audio = audio[:spoken] + bytes(len(audio) - spoken)
    frame_bytes = clip.rate * FRAME_MS // 1000 * 2
    speed = chaos.args.speed
    try:
        ws = await _connect(url, trace)
        if ws is None:
            trace.send_error = "refused"
            return trace
        async with ws:
            started = time.monotonic()

            async def receive() -> None:
                try:
                    async for message in ws:
                        event = json.loads(message)
                        trace.events.append((time.monotonic(), event))
                        if event["type"] == "session.closed":
                            return
                except websockets.ConnectionClosed:
                    return

            receiver = asyncio.create_task(receive())
            try:
                for index in range(0, len(audio), frame_bytes):
                    await ws.send(audio[index : index + frame_bytes])
                    # Pacing the sender like a microphone (at ``speed``).
                    due = started + (index + frame_bytes) / (clip.rate * 2) / speed
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                if not receiver.done():
                    await ws.send(json.dumps({"type": "session.close"}))
                    trace.sent_close = True
            except websockets.ConnectionClosed as exc:
                trace.send_error = f"send failed: {exc}"
            try:
                await asyncio.wait_for(receiver, CLOSE_TIMEOUT_S)
            except TimeoutError:
                trace.send_error = f"no session.closed within {CLOSE_TIMEOUT_S:.0f} s"
            await ws.close()
            trace.close_code = ws.close_code
            trace.close_reason = ws.close_reason or ""
    except (OSError, websockets.WebSocketException) as exc:
        trace.send_error = f"connection failed: {exc!r}"
    return trace


def _worker(server: RunningServer, model: str) -> dict[str, Any] | None:
    try:
        return server.worker(model)
    except (httpx.HTTPError, ValueError, AssertionError):
        return None


def _wait_worker(server: RunningServer, model: str, old_pid: int | None) -> dict[str, Any] | None:
    """Poll /health until a worker other than ``old_pid`` is ready; None past the timeout."""
    deadline = time.monotonic() + WORKER_BACK_TIMEOUT_S
    while time.monotonic() < deadline:
        worker = _worker(server, model)
        if worker and worker.get("pid") != old_pid and worker.get("state") in ("ready", "busy"):
            return worker
        time.sleep(0.1)
    return None


async def _kill(chaos: Chaos, follow_up: bool) -> Kill:
    """SIGKILL the ready worker, then wait until /health shows its successor ready."""
    model = chaos.args.model
    waited = time.monotonic()
    worker = await asyncio.to_thread(_wait_worker, chaos.server, model, None)
    kill = Kill(chaos.now(), worker.get("pid") if worker else None, follow_up=follow_up)
    kill.waited_for_ready_s = time.monotonic() - waited
    chaos.kills.append(kill)
    if kill.pid is None:
        kill.error = "no ready worker to kill"
        return kill
    try:
        os.kill(kill.pid, signal.SIGKILL)
    except ProcessLookupError:
        kill.error = "the worker was already gone"
    killed = time.monotonic()
    back = await asyncio.to_thread(_wait_worker, chaos.server, model, kill.pid)
    if back is None:
        kill.error = f"no ready worker within {WORKER_BACK_TIMEOUT_S:.0f} s"
    else:
        kill.new_pid, kill.worker_back_s = back["pid"], time.monotonic() - killed
    back_s = "-" if kill.worker_back_s is None else f"{kill.worker_back_s:.1f} s"
    log(f"killed worker {kill.pid} at {kill.at_s:.1f} s; ready again after {back_s}")
    return kill


async def kill_loop(chaos: Chaos) -> None:
    """SIGKILL the model's worker every ``--kill-interval`` s until the sessions finish.

    With ``--double-kill`` its successor is killed too, as soon as it is ready: while the
    sessions open their new streams and send their uncommitted audio again.
    """
    args = chaos.args
    at_s = args.first_kill if args.first_kill is not None else args.kill_interval
    while await chaos.until(at_s):
        kill = await _kill(chaos, follow_up=False)
        if kill.error is None and args.double_kill:
            kill = await _kill(chaos, follow_up=True)
        if kill.pid is None:
            return
        # A worker killed (again) before the sessions resumed on it would test the
        # sessions' "breaks again and again before any final" rule, not their recovery:
        # the next kill comes half an interval after the worker is back at the earliest.
        at_s = max(at_s + args.kill_interval, chaos.now() + args.kill_interval / 2)


async def batch_loop(chaos: Chaos, data: bytes, reference: str | None) -> None:
    """A batch upload every ``--batch-interval`` s (one at a time) until the sessions end."""
    args = chaos.args
    at_s = args.batch_interval
    async with httpx.AsyncClient(base_url=chaos.server.base_url, timeout=300.0) as client:
        while await chaos.until(at_s):
            sent = time.monotonic()
            batch = Batch(chaos.now(), None, 0.0)
            try:
                response = await client.post(
                    "/v1/audio/transcriptions",
                    files={"file": ("clip.wav", data, "audio/wav")},
                    data={"model": args.model},
                )
            except httpx.HTTPError as exc:
                batch.error = repr(exc)
            else:
                batch.status = response.status_code
                batch.retry_after = response.headers.get("Retry-After")
                try:
                    body = response.json()
                except ValueError:
                    body = {"error": {"code": f"not JSON: {response.text[:80]!r}"}}
                if response.status_code == 200 and reference:
                    batch.wer = wer(reference, body.get("text", ""))
                elif isinstance(body.get("error"), dict):
                    batch.code = body["error"].get("code")
            batch.seconds = time.monotonic() - sent
            chaos.batches.append(batch)
            at_s = max(at_s + args.batch_interval, chaos.now())


async def sample_loop(chaos: Chaos) -> None:
    """The RSS of the API process and of the worker every ``--sample-interval`` s."""
    server_pid = chaos.server.process.pid
    at_s = 0.0
    while True:
        pid = await asyncio.to_thread(worker_pid, chaos.server.base_url, chaos.args.model)
        wall = chaos.now()
        chaos.samples.append(
            Sample(wall, wall, rss_mb(server_pid), rss_mb(pid), pid, load_average())
        )
        if len(chaos.samples) % 6 == 1:
            log(
                f"{wall:6.1f} s: server {chaos.samples[-1].server_mb or 0:.1f} MB, worker "
                f"{chaos.samples[-1].worker_mb or 0:.1f} MB, {len(chaos.kills)} kills, "
                f"{len(chaos.batches)} batches"
            )
        at_s += chaos.args.sample_interval
        await asyncio.sleep(max(0.0, at_s - chaos.now()))


async def run_pass(
    chaos: Chaos,
    clip: Clip,
    loops: int,
    stagger_s: float,
    uploads: tuple[bytes, str | None] | None,
) -> list[Trace]:
    """The sessions; with ``uploads`` (a batch clip and its reference) the chaos too:
    the killer, the batch uploads and the RSS sampler."""
    args = chaos.args
    url = chaos.server.base_url.replace("http://", "ws://") + f"/v1/realtime?model={args.model}"
    helpers: list[asyncio.Task[None]] = []
    sampler: asyncio.Task[None] | None = None
    if uploads is not None:
        sampler = asyncio.create_task(sample_loop(chaos))
        helpers.append(asyncio.create_task(kill_loop(chaos)))
        if args.batch_interval > 0:
            helpers.append(asyncio.create_task(batch_loop(chaos, *uploads)))
    traces = [Trace(index, loops=loops) for index in range(args.sessions)]
    if uploads is not None:
        # Quiet sessions speak once, at the start, then stay silent through the kills.
        quiet = range(args.sessions, args.sessions + args.quiet_sessions)
        traces += [Trace(index, loops=loops, spoken=1) for index in quiet]
    # Quiet sessions start with the first one and last until the last one ends.
    last_start_s = (args.sessions - 1) * stagger_s
    await asyncio.gather(
        *(
            stream_session(url, clip, trace, trace.index * stagger_s, 0.0, chaos)
            if trace.spoken is None
            else stream_session(url, clip, trace, 0.0, last_start_s * args.speed, chaos)
            for trace in traces
        )
    )
    chaos.done.set()
    if sampler is not None:
        sampler.cancel()
    # The killer waits for the worker it killed to come back; the last upload finishes.
    await asyncio.gather(*helpers, return_exceptions=True)
    return traces


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--sessions", type=int, default=4, help="concurrent realtime sessions")
    add("--minutes", type=float, default=10.0, help="audio per session (whole loops of the clip)")
    add("--loops", type=int, help="loops of the clip per session (overrides --minutes)")
    add("--kill-interval", type=float, default=75.0, help="seconds between worker kills")
    add("--double-kill", action="store_true", help="also kill each successor once it is ready")
    add("--quiet-sessions", type=int, default=0, help="sessions silent after one utterance")
    add("--first-kill", type=float, help="seconds to the first kill (default: the interval)")
    add("--batch-interval", type=float, default=20.0, help="seconds between uploads (0: none)")
    add("--speed", type=float, default=1.0, help="x real time, 1-4")
    add("--stagger", type=float, help="seconds between session starts (default: loop/sessions)")
    add("--model", default=DEFAULT_MODEL)
    add("--clip", type=Path, default=DEFAULT_CLIP, help="mono 16-bit WAV, see above")
    add("--batch-clip", type=Path, default=DEFAULT_CLIP, help="uploaded in batch")
    add("--baseline-loops", type=int, default=1, help="loops of the no-fault pass (0: none)")
    add("--max-wer", type=float, default=0.15, help="WER bound of each session and batch")
    add("--wer-margin", type=float, default=0.05, help="over the no-fault pass's worst session")
    add("--sample-interval", type=float, default=10.0, help="RSS sampling, s")
    add("--theo-home", type=Path, help="reuse installed models (else a temp home)")
    add("--startup-timeout", type=float, default=600.0, help="s to wait for /health ok")
    add("--workdir", type=Path, help="keep the server log and home here")
    add("--json", type=Path, help="write the results here as JSON")
    add("--check", action="store_true", help="exit 1 when an invariant fails")
    add("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if not 1.0 <= args.speed <= 4.0:
        parser.error("--speed must be between 1 and 4")
    if args.sessions < 1 or args.kill_interval <= 0:
        parser.error("--sessions and --kill-interval must be positive")
    return args


def server_env(args: argparse.Namespace, seconds: float) -> dict[str, str]:
    env = {"THEO_LOG_FORMAT": "json"}
    if "THEO_ITN_CACHE_DIR" not in os.environ:
        # A fresh home would compile the NeMo ITN grammars again (~15 s of CPU).
        env["THEO_ITN_CACHE_DIR"] = str(REPO_ROOT / ".theo-test-cache" / "itn")
    if args.speed > 1.0:
        env["THEO_SESSION__MAX_BACKLOG_S"] = str(seconds + 60)
    if args.kill_interval < 25 or args.double_kill:
        # The manager gives a worker up at its 4th crash within 60 s and doubles the
        # restart delay for each restart in that window: count restarts over half a kill
        # interval instead, so these kills test the sessions, not the restart limit.
        window = f"{args.kill_interval / 2:g}"
        env["THEO_WORKER__RESTART_WINDOW_S"] = window
        log(f"THEO_WORKER__RESTART_WINDOW_S={window} for these kills")
    return env


async def passes(
    server: RunningServer, args: argparse.Namespace, clip: Clip, loops: int
) -> dict[str, Any]:
    baseline: list[dict[str, Any]] = []
    if args.baseline_loops > 0:
        log(f"no-fault pass: {args.sessions} sessions x {args.baseline_loops} loop(s)")
        calm = Chaos(server, args)
        traces = await run_pass(calm, clip, args.baseline_loops, 0.0, None)
        baseline = [analyse_session(t, clip) for t in traces]
    stagger = args.stagger
    if stagger is None:
        stagger = clip.period_s / args.speed / args.sessions
    log(
        f"chaos pass: {args.sessions} sessions x {loops} loops "
        f"({loops * clip.period_s / args.speed:.0f} s each, {stagger:.1f} s apart)"
    )
    batch_data = args.batch_clip.read_bytes()
    batch_ref = args.batch_clip.with_suffix(".txt")
    reference = batch_ref.read_text().strip() if batch_ref.exists() else None
    chaos = Chaos(server, args)
    traces = await run_pass(chaos, clip, loops, stagger, (batch_data, reference))
    wall_s = chaos.now()
    return {
        "wall_s": wall_s,
        "baseline": baseline,
        "sessions": [analyse_session(t, clip) for t in traces],
        "kills": analyse_kills([asdict(k) for k in chaos.kills], traces, chaos.started),
        "batches": [asdict(b) for b in chaos.batches],
        "samples": [asdict(s) for s in chaos.samples],
        "server_rss_growth_mb": growth_mb(chaos.samples, "server_mb", 0.0),
        "worker_rss_growth_mb": growth_mb(chaos.samples, "worker_mb", 0.0),
    }


def main() -> int:
    args = parse_args()
    # A SIGTERM ends the run like Ctrl+C does: the server is still stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    clip = load_clip(args.clip)
    if len(clip.spans) < 2:
        raise SystemExit(f"{args.clip}: no utterances separated by {MIN_SILENCE_S} s of silence")
    loops = args.loops or max(1, math.ceil(args.minutes * 60 / clip.period_s))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="theo-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    home = args.theo_home or workdir / "home"
    log_path = workdir / "theo.log"
    ensure_model(home, args.model, log_path)
    models_dir = workdir / "models"
    shutil.rmtree(models_dir, ignore_errors=True)
    models_dir.mkdir()
    (models_dir / args.model).symlink_to((home / "models" / args.model).resolve())
    server: RunningServer | None = None
    started = time.monotonic()
    try:
        log("starting theo serve")
        env = server_env(args, loops * clip.period_s)
        server = start_server(home, log_path, models_dir, env)
        server.wait_ready(args.startup_timeout)
        log(f"ready; idle after {wait_idle(server.process.pid, 120.0):.1f} s more")
        result = asyncio.run(passes(server, args, clip, loops))
        result["final_health"] = server.health()
    finally:
        if server is not None:
            log("stopping theo serve")
            server.stop()
    result["server_log"] = read_server_log(log_path)
    result["log_path"] = str(log_path)
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        log(f"kept {workdir}")
    baseline_wers = [s["wer"] for s in result["baseline"] if s["wer"] is not None]
    result["baseline_wer"] = baseline_wers
    result["wer_bound"] = max([args.max_wer, *(w + args.wer_margin for w in baseline_wers)])
    result["config"] = {
        **{k: v for k, v in vars(args).items() if k in ("sessions", "speed", "model")},
        "kill_interval": args.kill_interval,
        "double_kill": args.double_kill,
        "quiet_sessions": args.quiet_sessions,
        "batch_interval": args.batch_interval,
        "loops": loops,
        "clip": args.clip.name,
        "utterances_per_loop": len(clip.spans),
        "total_s": time.monotonic() - started,
    }
    result["failures"] = failures_of(result, args.max_wer)
    result["passed"] = not result["failures"]
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 1 if args.check and result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
