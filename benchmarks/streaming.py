"""Realtime streaming benchmark: latency, keeping up and accuracy of ``WS /v1/realtime``.

One run of this script:

1. installs the models with ``theo pull`` into a temporary ``THEO_HOME`` (or uses
   ``--theo-home``) and starts ``theo serve`` on a free port with only those models
   (a temporary models directory of symlinks), then waits for ``GET /health`` to say ``ok``;
2. per model, transcribes the clip once with ``POST /v1/audio/transcriptions`` (one untimed
   warm-up, one timed call): the batch text the streamed finals are compared with;
3. per model, streams ``--warmup-seconds`` of the clip in one untimed session (Silero, the
   worker's stream thread and the ITN grammars of the language get loaded), then, per
   concurrency ``N``, opens ``N`` WebSocket sessions at once, each streaming the clip
   (``--repeat`` times, 0.6 s apart; default 2, ~55 s and 10 utterances for the default
   clip) at real-time pace in 20 ms PCM16 frames, then ``--tail-silence`` seconds of digital
   silence (so the VAD closes the last utterance) and ``session.close``, and waits for the
   server to close the socket; every frame's send time and every event's arrival time are
   recorded on one monotonic clock. Before each configuration it waits until the API
   process is idle (background warm-up such as NeMo grammar compilation would skew it);
4. prints a latency table, a keep-up/accuracy table and whether the targets are met;
5. stops the server (SIGTERM, then wait) whatever happens.

Usage (from the repository root)::

    .venv/bin/python benchmarks/streaming.py
    .venv/bin/python benchmarks/streaming.py --models faster-whisper-tiny.en --concurrency 1,2
    .venv/bin/python benchmarks/streaming.py --models faster-whisper-tiny.en:1,2,4,8,12 \
        faster-whisper-base:1,2,4 --repeat 3
    .venv/bin/python benchmarks/streaming.py --theo-home ~/.theo --clip my.wav --language en
    .venv/bin/python benchmarks/streaming.py --models faster-whisper-tiny.en:1 \
        --session-config '{"dictation": false}'

``--session-config`` is a JSON object of ``session.configure`` fields sent at the start of
every session, the warm-up included (with ``input_sample_rate`` added for clips not at
16 kHz); each session waits for the server's ``session.updated`` before its first frame,
and the report prints the requested object and the effective values.

``--models`` entries are ``NAME`` or ``NAME:C1,C2,...``; a model without its own list uses
``--concurrency``. Set ``THEO_DOWNLOAD_CACHE_DIR`` (and ``HF_HUB_OFFLINE=1`` without network)
to reuse downloads when the script pulls the models itself.

What is measured (the ``vad.*`` timestamps are on the session's audio clock, so the client
knows exactly when it sent the audio they point at):

* **first partial**: arrival of a segment's first ``transcript.partial`` minus the send time
  of the frame holding the audio at that segment's ``vad.speech_start`` ``timestamp_ms`` (the
  first 32 ms VAD window of speech). It includes the VAD's 250 ms confirmation, the wait for
  enough audio to decode, the decodes LocalAgreement-2 needs, queueing and transport.
* **final delay**: arrival of ``transcript.final`` minus the send time of the frame holding
  the audio at the segment's ``vad.speech_end`` ``timestamp_ms`` (end of the last speech
  window): what a user waits after they stop talking. It includes the VAD's 300 ms minimum
  silence (10 windows = 320 ms). **after VAD** is the same minus that hang-over: measured
  from the send time of the frame that completed the 10th silent window, which is when the
  server can first know that the utterance ended (the server's ``theo_stt_final_delay``).
* **keeps up**: a configuration keeps up with real time when every session ends cleanly
  (``session.closed``, no ``error`` event, one final per ``vad.speech_start``), every final
  arrives within ``--drain-limit`` seconds after the client sent its last frame (the backlog
  a server that falls behind leaves at the end), and no session's final delay grows: the
  mean of its second half of finals is at most ``--growth-limit`` seconds above the mean of
  its first half. A slow but steady final delay is latency, not falling behind.
* **WER**: each session's finals joined, against the batch text of the same model and audio,
  and against the reference transcript (``CLIP.txt`` next to the clip, repeated with
  ``--repeat``; skipped when ``--max-seconds`` cuts the clip). Text is normalised as the tests
  do (lower case, no punctuation, ``mr``/``mister`` folded).
* **srv ttfb / srv final**: means of the server's own ``theo_stt_ttfb_seconds`` (segment
  opened by the VAD -> first partial) and ``theo_stt_final_delay_seconds`` (VAD end ->
  final), from ``GET /metrics`` before and after each configuration.
* **dictation-extended endpoints**: segments whose end waited ``dictation_silence_ms``
  because their words ended inside a dictated entity (the server's
  ``theo_stt_dictation_extended_endpoints_total``, same before/after difference). For those
  segments **after VAD** still subtracts only the ``vad_silence_ms`` hang-over, so it
  includes the longer wait.
* **w/ partial**: utterances that got at least one partial before their final; the
  first-partial percentiles cover only those.
* **theo cpu / other cpu**: cores used during the configuration by ``theo serve`` and its
  workers, and by every other process of the machine (from ``/proc``): a run with
  ``other cpu`` well above zero shared the machine and is noisy.

Sessions start together by default (their utterances end at the same moments: the worst
case for a shared worker); ``--stagger-ms`` spreads their starts. Progress goes to stderr,
the tables to stdout, the server's output to ``theo.log`` in the temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from harness import log, model_links, percentile

from tests.helpers.server import RunningServer, start_server
from tests.helpers.wer import normalize, wer

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CLIP = REPO_ROOT / "tests" / "fixtures" / "audio" / "en_librivox.wav"
DEFAULT_MODELS = ("faster-whisper-tiny.en", "faster-whisper-base:1,2")
DEFAULT_CONCURRENCY = "1,2,4,8"
TARGET_MODEL = "faster-whisper-tiny.en"
TARGET_FIRST_PARTIAL_MS = 800.0
TARGET_FINAL_DELAY_MS = 500.0
# Issue 19's targets on a 2-core machine: (sessions, measure, title, p50 limit in ms).
SCHEDULER_TARGETS = (
    (1, "first_partial_ms", "first partial", 600.0),
    (8, "first_partial_ms", "first partial", 1000.0),
    (8, "final_delay_ms", "final delay", 600.0),
)
FRAME_MS = 20
VAD_WINDOW_MS = 32
# The server's default vad_silence_ms: 300 ms, rounded up to 10 whole 32 ms windows (320 ms).
DEFAULT_VAD_SILENCE_MS = 300
REPEAT_GAP_S = 0.6
_PASS_BATCH_HEALTH_S = 1.0  # health probe interval of --pass-batch servers (fresh counters)


# --------------------------------------------------------------------------- helpers


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process from ``/proc`` (None where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, timeout_s: float, busy_share: float = 0.1) -> float:
    """Wait until ``pid`` uses less than ``busy_share`` of a core over one second.

    The server finishes warming up in the background after ``/health`` says ``ok`` (NeMo
    ITN grammars, for one); measuring before that would time the warm-up. Returns the
    seconds waited.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        after = cpu_seconds(pid)
        if before is None or after is None or after - before < busy_share:
            break
    return time.monotonic() - started


def machine_busy_seconds() -> float | None:
    """CPU seconds all processes of the machine have used since boot (None off Linux)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal: everything but idle and iowait.
    busy = sum(int(fields[i]) for i in (1, 2, 3, 6, 7, 8))
    return busy / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    """CPU used during one configuration: by Theo (API + workers) and by everything else.

    The benchmark's own process counts as neither (its share is small); "other" is what
    the rest of a shared machine took, a measure of how noisy the run was.
    """

    theo_pids: list[int]
    started: float = 0.0
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
        self.theo_start = self._theo()
        self.mine_start = self._mine()
        self.busy_start = machine_busy_seconds()

    def stop(self) -> tuple[float, float | None]:
        """(Theo's cores, other processes' cores) averaged over the interval."""
        wall = max(time.monotonic() - self.started, 1e-9)
        theo = self._theo() - self.theo_start
        mine = self._mine() - self.mine_start
        busy_end = machine_busy_seconds()
        if self.busy_start is None or busy_end is None:
            return theo / wall, None
        other = (busy_end - self.busy_start) - theo - mine
        return theo / wall, max(other, 0.0) / wall


def normalise_words(text: str) -> list[str]:
    """Words of ``text`` normalised like the tests' WER (``tests/helpers/wer.py``)."""
    return normalize(text).split()


def parse_int_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise ValueError(f"expected a comma-separated list of positive integers, got {text!r}")
    return values


def parse_session_config(text: str) -> dict[str, Any]:
    """The ``--session-config`` JSON object: extra ``session.configure`` fields."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--session-config is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"--session-config must be a JSON object, got {text!r}")
    if "type" in value:
        raise ValueError("--session-config holds session.configure fields, without 'type'")
    return value


def hangover_ms(config: dict[str, Any]) -> int:
    """The VAD's end hang-over for ``vad_silence_ms`` of ``config``: whole 32 ms windows."""
    silence = int(config.get("vad_silence_ms", DEFAULT_VAD_SILENCE_MS))
    return max(1, -(-silence // VAD_WINDOW_MS)) * VAD_WINDOW_MS


def parse_models(entries: list[str], default_concurrency: list[int]) -> list[tuple[str, list[int]]]:
    """``NAME`` or ``NAME:C1,C2`` entries (comma-separated names allowed without lists)."""
    plan: list[tuple[str, list[int]]] = []
    for entry in entries:
        if ":" in entry:
            name, levels = entry.split(":", 1)
            plan.append((name.strip(), sorted(set(parse_int_list(levels)))))
        else:
            plan += [(name.strip(), default_concurrency) for name in entry.split(",") if name]
    return plan


# --------------------------------------------------------------------------- the clip


@dataclass
class StreamClip:
    """The PCM16 audio each session streams, and what it should transcribe to."""

    name: str
    pcm16: bytes
    sample_rate: int
    reference: str | None

    @property
    def duration_s(self) -> float:
        return len(self.pcm16) / 2 / self.sample_rate

    def wav_bytes(self) -> bytes:
        """The same audio as a WAV file, for the batch decode."""
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(self.sample_rate)
            writer.writeframes(self.pcm16)
        return buffer.getvalue()


def load_clip(path: Path, repeat: int, max_seconds: float | None) -> StreamClip:
    """Decode ``path`` (any format PyAV reads) to mono PCM16 at its own rate, repeat, cut."""
    from theo.audio.decode import decode_audio  # noqa: PLC0415 - heavy import
    from theo.audio.pcm import float_to_pcm16 as to_pcm16  # noqa: PLC0415 - heavy import

    decoded = decode_audio(path.read_bytes())
    rate = decoded.sample_rate
    if not 8000 <= rate <= 48000:
        raise ValueError(f"{path}: {rate} Hz is outside the realtime API's 8000-48000 Hz")
    one = to_pcm16(decoded.samples)
    gap = b"\x00\x00" * round(REPEAT_GAP_S * rate)
    pcm16 = gap.join([one] * repeat)
    reference_path = path.with_suffix(".txt")
    reference: str | None = None
    if reference_path.exists():
        reference = " ".join([reference_path.read_text(encoding="utf-8").strip()] * repeat)
    if max_seconds is not None and len(pcm16) / 2 / rate > max_seconds:
        pcm16 = pcm16[: round(max_seconds * rate) * 2]
        reference = None
    return StreamClip(path.name, pcm16, rate, reference)


# --------------------------------------------------------------------------- theo serve


def batch_transcribe(
    client: httpx.Client, base_url: str, model: str, language: str | None, clip: StreamClip
) -> tuple[str, float]:
    """``POST /v1/audio/transcriptions`` of the streamed audio: (text, wall seconds)."""
    data = {"model": model, "response_format": "json", "temperature": "0"}
    if language:
        data["language"] = language
    started = time.perf_counter()
    response = client.post(
        f"{base_url}/v1/audio/transcriptions",
        data=data,
        files={"file": ("clip.wav", clip.wav_bytes(), "audio/wav")},
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"POST failed: HTTP {response.status_code}: {response.text[:500]}")
    return str(response.json()["text"]).strip(), elapsed


class BatchLoad:
    """``count`` threads each posting a long recording for batch transcription, one after
    another, until stopped: the load a busy server's live sessions must not suffer from."""

    def __init__(
        self, base_url: str, model: str, language: str | None, clip: StreamClip, count: int
    ) -> None:
        self._args = (base_url, model, language, clip)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(count)]
        self.done: list[tuple[str, float]] = []
        self.errors: list[str] = []

    def _loop(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(900.0)) as client:
            while not self._stop.is_set():
                try:
                    self.done.append(batch_transcribe(client, *self._args))
                except (httpx.HTTPError, RuntimeError) as exc:
                    self.errors.append(str(exc)[:200])
                    return

    def __enter__(self) -> BatchLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Let the requests in flight finish (their results count), then stop."""
        self._stop.set()
        for thread in self._threads:
            thread.join()


def load_clip_of(clip: StreamClip, min_seconds: float) -> StreamClip:
    """``clip`` repeated, 0.6 s apart, until it lasts at least ``min_seconds``."""
    one = clip.pcm16
    gap = b"\x00\x00" * round(REPEAT_GAP_S * clip.sample_rate)
    repeat = max(1, math.ceil(min_seconds / clip.duration_s))
    reference = " ".join([clip.reference] * repeat) if clip.reference else None
    return StreamClip(
        f"{clip.name} x{repeat}", gap.join([one] * repeat), clip.sample_rate, reference
    )


_METRIC_LINE = re.compile(
    r"^(theo_stt_(?:(?:ttfb|final_delay)_seconds_(?:sum|count)"
    r"|dictation_extended_endpoints_total)"
    r"|theo_batch_(?:calls|decodes)_total)(?:\{[^}]*\})? (\S+)$"
)


def stream_metrics(client: httpx.Client, base_url: str) -> dict[str, float]:
    """Sums and counts of the server's realtime latency histograms, and its count of
    dictation-extended endpoints (empty if unavailable)."""
    try:
        response = client.get(f"{base_url}/metrics")
    except httpx.HTTPError:
        return {}
    values: dict[str, float] = {}
    for line in response.text.splitlines():
        match = _METRIC_LINE.match(line)
        if match:  # labelled series (one per worker) are summed
            values[match.group(1)] = values.get(match.group(1), 0.0) + float(match.group(2))
    return values


def metric_mean_ms(before: dict[str, float], after: dict[str, float], name: str) -> float | None:
    count = after.get(f"{name}_count", 0.0) - before.get(f"{name}_count", 0.0)
    total = after.get(f"{name}_sum", 0.0) - before.get(f"{name}_sum", 0.0)
    return total / count * 1000.0 if count > 0 else None


def mean_pass_batch(before: dict[str, float], after: dict[str, float]) -> float | None:
    """Partial passes per batched engine call during a configuration (None: no call)."""
    calls = metric_delta(before, after, "theo_batch_calls_total")
    decodes = metric_delta(before, after, "theo_batch_decodes_total")
    return decodes / calls if calls and decodes is not None else None


def metric_delta(before: dict[str, float], after: dict[str, float], name: str) -> int | None:
    """How much a counter grew during a configuration (None if the server lacks it)."""
    if name not in after:
        return None
    return round(after[name] - before.get(name, 0.0))


# --------------------------------------------------------------------------- one session


@dataclass
class SessionTrace:
    """What one session sent and received, on the benchmark's monotonic clock."""

    send_times: list[float] = field(default_factory=list)  # one per 20 ms frame
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    audio_frames: int = 0  # frames of the clip, before the tail silence
    failure: str | None = None
    config: dict[str, Any] = field(default_factory=dict)  # the session's effective config

    def sent_at_ms(self, audio_ms: float) -> float:
        """When the frame holding the audio at ``audio_ms`` (session clock) left the client."""
        index = int(max(audio_ms, 0.0) // FRAME_MS)
        return self.send_times[min(index, len(self.send_times) - 1)]


async def stream_session(
    url: str,
    clip: StreamClip,
    *,
    start_delay_s: float,
    tail_silence_s: float,
    timeout_s: float,
    session_config: dict[str, Any] | None = None,
) -> SessionTrace:
    """Stream ``clip`` at real-time pace, then silence and ``session.close``; record it all.

    ``session_config`` (and ``input_sample_rate`` for a clip not at 16 kHz) is sent in one
    ``session.configure`` first; the audio starts once the server's ``session.updated``
    came back (an ``error`` instead ends the session as a failure).
    """
    trace = SessionTrace()
    frame_bytes = clip.sample_rate * FRAME_MS // 1000 * 2
    tail = b"\x00\x00" * round(tail_silence_s * clip.sample_rate)
    payload = clip.pcm16 + tail
    trace.audio_frames = -(-len(clip.pcm16) // frame_bytes)
    await asyncio.sleep(start_delay_s)
    try:
        async with websockets.connect(url, max_size=None, open_timeout=60) as ws:
            created = json.loads(await asyncio.wait_for(ws.recv(), 60))
            trace.events.append((time.monotonic(), created))
            trace.config = dict(created.get("config") or {})
            configure = dict(session_config or {})
            if clip.sample_rate != 16_000:
                configure["input_sample_rate"] = clip.sample_rate
            if configure:
                await ws.send(json.dumps({"type": "session.configure", **configure}))
                answer = json.loads(await asyncio.wait_for(ws.recv(), 60))
                trace.events.append((time.monotonic(), answer))
                if answer.get("type") == "error":
                    return trace  # reported from the recorded error event
                if answer.get("type") != "session.updated":
                    trace.failure = f"session.configure answered {answer.get('type')!r}"
                    return trace
                trace.config = dict(answer.get("config") or {})

            async def receive() -> None:
                async for message in ws:
                    event = json.loads(message)
                    trace.events.append((time.monotonic(), event))
                    if event.get("type") == "session.closed":
                        return

            receiver = asyncio.create_task(receive())
            started = time.monotonic()
            for index, offset in enumerate(range(0, len(payload), frame_bytes)):
                await ws.send(payload[offset : offset + frame_bytes])
                trace.send_times.append(time.monotonic())
                # Pace like a microphone on an absolute schedule, so jitter never accumulates.
                due = started + (index + 1) * FRAME_MS / 1000.0
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            await ws.send(json.dumps({"type": "session.close"}))
            await asyncio.wait_for(receiver, timeout_s)
            # The server closes the socket after session.closed; let it, as a polite client.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.wait_closed(), 5.0)
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        trace.failure = f"{type(exc).__name__}: {exc}"
    return trace


# --------------------------------------------------------------------------- analysis


@dataclass
class SegmentResult:
    segment_id: int
    first_partial_ms: float | None
    final_delay_ms: float | None
    final_after_vad_ms: float | None
    final_text: str
    partials_not_prefix: int


@dataclass
class SessionResult:
    segments: list[SegmentResult]
    text: str
    errors: list[str]
    missing_finals: int
    drain_ms: float | None  # last final arrival - last frame (tail silence included) sent
    growth_ms: float | None
    wer_batch: float
    wer_reference: float | None
    config: dict[str, Any] = field(default_factory=dict)  # effective session config


def is_prefix(partial: str, final: str) -> bool:
    words, final_words = normalise_words(partial), normalise_words(final)
    return final_words[: len(words)] == words


def analyse_session(trace: SessionTrace, batch_text: str, reference: str | None) -> SessionResult:
    starts: dict[int, tuple[float, int]] = {}
    ends: dict[int, int] = {}
    partials: dict[int, list[tuple[float, str]]] = {}
    finals: dict[int, tuple[float, str]] = {}
    errors: list[str] = [trace.failure] if trace.failure else []
    closed = False
    for arrival, event in trace.events:
        kind = event.get("type")
        segment = int(event.get("segment_id", 0))
        if kind == "vad.speech_start":
            starts[segment] = (arrival, int(event["timestamp_ms"]))
        elif kind == "vad.speech_end":
            ends[segment] = int(event["timestamp_ms"])
        elif kind == "transcript.partial":
            partials.setdefault(segment, []).append((arrival, str(event.get("text", ""))))
        elif kind == "transcript.final":
            finals[segment] = (arrival, str(event.get("text", "")))
        elif kind == "error":
            errors.append(f"{event.get('code')}: {event.get('message')}")
        elif kind == "session.closed":
            closed = True
    if not closed and not errors:
        errors.append("no session.closed")
    segments: list[SegmentResult] = []
    for segment in sorted(set(starts) | set(finals)):
        final_arrival, final_text = finals.get(segment, (None, ""))
        seg_partials = partials.get(segment, [])
        first_partial = None
        if segment in starts and seg_partials:
            first_partial = (seg_partials[0][0] - trace.sent_at_ms(starts[segment][1])) * 1000
        final_delay = after_vad = None
        if final_arrival is not None and segment in ends and trace.send_times:
            end_ms = ends[segment]
            final_delay = (final_arrival - trace.sent_at_ms(end_ms - 1)) * 1000
            decided = trace.sent_at_ms(end_ms + hangover_ms(trace.config) - 1)
            after_vad = (final_arrival - decided) * 1000
        not_prefix = sum(1 for _, text in seg_partials if not is_prefix(text, final_text))
        segments.append(
            SegmentResult(segment, first_partial, final_delay, after_vad, final_text, not_prefix)
        )
    delays = [s.final_delay_ms for s in segments if s.final_delay_ms is not None]
    growth = None
    if len(delays) >= 2:
        half = len(delays) // 2
        growth = statistics.fmean(delays[-half:]) - statistics.fmean(delays[:half])
    final_arrivals = [arrival for arrival, _ in finals.values()]
    drain = None
    if final_arrivals and trace.send_times:
        drain = (max(final_arrivals) - trace.send_times[-1]) * 1000
    text = " ".join(s.final_text for s in segments if s.final_text)
    return SessionResult(
        segments=segments,
        text=text,
        errors=errors,
        missing_finals=sum(1 for s in starts if s not in finals),
        drain_ms=drain,
        growth_ms=growth,
        wer_batch=wer(batch_text, text, allow_empty=True),
        wer_reference=wer(reference, text, allow_empty=True) if reference else None,
        config=trace.config,
    )


@dataclass
class ConfigResult:
    model: str
    concurrency: int
    sessions: list[SessionResult]
    srv_ttfb_ms: float | None
    srv_final_ms: float | None
    wall_s: float
    theo_cores: float
    other_cores: float | None
    drain_limit_ms: float
    growth_limit_ms: float
    dictation_extended: int | None = None  # segments whose end waited dictation_silence_ms
    batch_load: int = 0  # concurrent batch requests running during the sessions
    batch_done: list[tuple[str, float]] = field(default_factory=list)  # (text, seconds)
    max_pass_batch: int | None = None  # the server's THEO_SCHEDULER__MAX_PASS_BATCH, if set
    mean_pass_batch: float | None = None  # partial passes per batched engine call

    @property
    def label(self) -> str:
        """Sessions, the batch requests running beside them and the pass batching the
        server was started with: ``4``, ``4+4b`` or ``8 pb4``."""
        label = (
            f"{self.concurrency}+{self.batch_load}b" if self.batch_load else str(self.concurrency)
        )
        return label if self.max_pass_batch is None else f"{label} pb{self.max_pass_batch}"

    @property
    def segments(self) -> list[SegmentResult]:
        return [seg for session in self.sessions for seg in session.segments]

    def values(self, name: str) -> list[float]:
        found = (getattr(seg, name) for seg in self.segments)
        return [value for value in found if value is not None]

    def keep_up_problems(self) -> list[str]:
        """Why this configuration does not keep up with real time (empty when it does)."""
        problems: list[str] = []
        for index, session in enumerate(self.sessions):
            problems += [f"session {index}: {error}" for error in session.errors]
            if session.missing_finals:
                problems.append(f"session {index}: {session.missing_finals} segment(s) no final")
            if session.growth_ms is not None and session.growth_ms > self.growth_limit_ms:
                problems.append(f"session {index}: final delay grew {session.growth_ms:.0f} ms")
            if session.drain_ms is not None and session.drain_ms > self.drain_limit_ms:
                problems.append(f"session {index}: last final {session.drain_ms:.0f} ms late")
        if not self.values("final_delay_ms"):
            problems.append("no final delay measured")
        return problems


async def run_config(
    base_url: str,
    model: str,
    language: str | None,
    clip: StreamClip,
    concurrency: int,
    args: argparse.Namespace,
) -> list[SessionTrace]:
    url = base_url.replace("http://", "ws://") + f"/v1/realtime?model={model}"
    if language:
        url += f"&language={language}"
    timeout_s = clip.duration_s + args.tail_silence + args.stagger_ms / 1000 * concurrency + 300
    tasks = [
        stream_session(
            url,
            clip,
            start_delay_s=index * args.stagger_ms / 1000,
            tail_silence_s=args.tail_silence,
            timeout_s=timeout_s,
            session_config=args.session_config,
        )
        for index in range(concurrency)
    ]
    return list(await asyncio.gather(*tasks))


# --------------------------------------------------------------------------- output


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def quantiles(values: list[float]) -> tuple[str, str]:
    if not values:
        return "-", "-"
    return f"{percentile(values, 0.5):.0f}", f"{percentile(values, 0.95):.0f}"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def latency_rows(results: list[ConfigResult]) -> list[list[str]]:
    rows: list[list[str]] = []
    for result in results:
        segments = result.segments
        with_partial = sum(1 for s in segments if s.first_partial_ms is not None)
        rows.append(
            [
                result.model,
                result.label,
                str(len(segments)),
                f"{with_partial}/{len(segments)}",
                *quantiles(result.values("first_partial_ms")),
                *quantiles(result.values("final_delay_ms")),
                *quantiles(result.values("final_after_vad_ms")),
                fmt_ms(result.srv_ttfb_ms),
                fmt_ms(result.srv_final_ms),
            ]
        )
    return rows


def quality_rows(results: list[ConfigResult]) -> list[list[str]]:
    rows: list[list[str]] = []
    for result in results:
        sessions = result.sessions
        delays = result.values("final_delay_ms")
        growths = [s.growth_ms for s in sessions if s.growth_ms is not None]
        drains = [s.drain_ms for s in sessions if s.drain_ms is not None]
        wer_batch = [s.wer_batch for s in sessions]
        wer_ref = [s.wer_reference for s in sessions if s.wer_reference is not None]
        not_prefix = sum(s.partials_not_prefix for s in result.segments)
        partial_count = sum(1 for s in result.segments if s.first_partial_ms is not None)
        rows.append(
            [
                result.model,
                result.label,
                fmt_ms(max(delays) if delays else None),
                fmt_ms(max(growths) if growths else None),
                fmt_ms(max(drains) if drains else None),
                "yes" if not result.keep_up_problems() else "NO",
                fmt_pct(statistics.fmean(wer_batch)),
                fmt_pct(max(wer_batch)),
                fmt_pct(statistics.fmean(wer_ref) if wer_ref else None),
                fmt_pct(max(wer_ref) if wer_ref else None),
                f"{not_prefix}" if partial_count else "-",
                f"{result.wall_s:.0f}",
                f"{result.theo_cores:.2f}",
                "-" if result.other_cores is None else f"{result.other_cores:.2f}",
            ]
        )
    return rows


def describe_session_config(requested: dict[str, Any], results: list[ConfigResult]) -> str:
    """The ``--session-config`` sent, and the effective endpointing fields of the sessions."""
    sent = (
        f"--session-config {json.dumps(requested)}"
        if requested
        else "no --session-config (server defaults)"
    )
    configs = [s.config for r in results for s in r.sessions if s.config]
    if not configs:
        return sent
    keys = dict.fromkeys([*requested, "vad_silence_ms", "dictation", "dictation_silence_ms"])
    effective = {key: configs[0][key] for key in keys if key in configs[0]}
    same = all({k: c.get(k) for k in effective} == effective for c in configs)
    shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in effective.items())
    return f"{sent}; effective: {shown}" + ("" if same else " (first session; others differ)")


def report_contention(
    results: list[ConfigResult], clip: StreamClip, args: argparse.Namespace
) -> None:
    """Each level with batch load against the same level without: the ratios of p50s."""
    loaded = [r for r in results if r.batch_load]
    if not loaded:
        return
    long_clip = load_clip_of(clip, args.batch_seconds)
    print()
    print(
        f"contention: {args.batch_load} batch requests of {long_clip.duration_s:.0f} s "
        f"({long_clip.name}) running beside the sessions, p50 with load / without:"
    )
    for result in loaded:
        alone = next(
            r
            for r in results
            if r.model == result.model
            and r.concurrency == result.concurrency
            and r.max_pass_batch == result.max_pass_batch
            and not r.batch_load
        )
        ratios = []
        for name in ("first_partial_ms", "final_delay_ms"):
            with_load, without = result.values(name), alone.values(name)
            if with_load and without:
                a, b = percentile(with_load, 0.5), percentile(without, 0.5)
                ratios.append(f"{name[:-3].replace('_', ' ')} {a:.0f}/{b:.0f} ms = {a / b:.2f}x")
        errors = [
            wer(long_clip.reference, text) for text, _ in result.batch_done if long_clip.reference
        ]
        worst = f", worst batch WER {max(errors) * 100:.1f}%" if errors else ""
        seconds = [f"{s:.0f}" for _, s in result.batch_done]
        print(
            f"  {result.model} x{result.label}: {'; '.join(ratios)}; keeps up: "
            f"{'yes' if not result.keep_up_problems() else 'NO'}; "
            f"{len(result.batch_done)} batch requests done (s: {', '.join(seconds)}){worst}"
        )


def report_pass_batching(results: list[ConfigResult]) -> None:
    """Each level with partial passes batched against the same level unbatched (the
    smallest ``--pass-batch`` value): p50s, their ratios, and the passes per call."""
    settings = sorted({r.max_pass_batch for r in results if r.max_pass_batch is not None})
    if len(settings) < 2:
        return
    baseline = settings[0]
    print()
    print(f"pass batching against THEO_SCHEDULER__MAX_PASS_BATCH={baseline} (ratios of p50s):")
    for result in results:
        if result.max_pass_batch in (None, baseline):
            continue
        base = next(
            (
                r
                for r in results
                if r.model == result.model
                and r.concurrency == result.concurrency
                and r.batch_load == result.batch_load
                and r.max_pass_batch == baseline
            ),
            None,
        )
        if base is None:
            continue
        parts = []
        for name, title in (("first_partial_ms", "first partial"), ("final_delay_ms", "final")):
            on, off = result.values(name), base.values(name)
            if on and off:
                on_p50, off_p50 = percentile(on, 0.5), percentile(off, 0.5)
                parts.append(f"{title} {on_p50:.0f} / {off_p50:.0f} ms = {on_p50 / off_p50:.2f}x")
        with_partial = [
            sum(1 for s in r.segments if s.first_partial_ms is not None) for r in (result, base)
        ]
        parts.append(f"utterances with a partial {with_partial[0]} / {with_partial[1]}")
        werr = [statistics.fmean(s.wer_batch for s in r.sessions) for r in (result, base)]
        parts.append(f"WER/batch {fmt_pct(werr[0])} / {fmt_pct(werr[1])}")
        size = "-" if result.mean_pass_batch is None else f"{result.mean_pass_batch:.2f}"
        parts.append(f"passes per call {size}")
        print(f"  {result.model} x{result.label}: " + ", ".join(parts))


def report(
    results: list[ConfigResult],
    batch: dict[str, tuple[str, float]],
    clip: StreamClip,
    args: argparse.Namespace,
) -> None:
    print()
    print(
        f"clip {clip.name}: {clip.duration_s:.2f} s at {clip.sample_rate} Hz "
        f"(repeat={args.repeat}), {FRAME_MS} ms frames at real-time pace, "
        f"+{args.tail_silence:.1f} s silence, sessions "
        + (f"staggered by {args.stagger_ms:.0f} ms" if args.stagger_ms else "started together")
    )
    print(f"session config: {describe_session_config(args.session_config, results)}")
    for model, (text, seconds) in batch.items():
        ref = fmt_pct(wer(clip.reference, text, allow_empty=True)) if clip.reference else "-"
        print(f"batch {model}: {seconds * 1000:.0f} ms, WER vs reference {ref}")
    print()
    print("latency, ms (p50 / p95 over every utterance of every session):")
    print_table(
        [
            "model",
            "sessions",
            "utts",
            "w/ partial",
            "1st partial p50",
            "p95",
            "final p50",
            "p95",
            "after VAD p50",
            "p95",
            "srv ttfb",
            "srv final",
        ],
        latency_rows(results),
    )
    print()
    print("keeping up and accuracy:")
    print_table(
        [
            "model",
            "sessions",
            "max final ms",
            "growth ms",
            "drain ms",
            "keeps up",
            "WER/batch",
            "max",
            "WER/ref",
            "max",
            "partials not prefix",
            "wall s",
            "theo cpu",
            "other cpu",
        ],
        quality_rows(results),
    )
    print()
    print(
        f"keeps up = clean close, one final per utterance, drain (last final - last frame "
        f"sent, {args.tail_silence:.1f} s of silence included) <= {args.drain_limit:.1f} s, "
        f"final delay growth (2nd half - 1st half) <= {args.growth_limit * 1000:.0f} ms."
    )
    print(
        f"theo cpu / other cpu = cores used by theo serve + workers / by other processes "
        f"during the run ({os.cpu_count()} CPUs; other > 0.2 means a noisy run)."
    )
    for result in results:
        if result.dictation_extended is not None:
            print(
                f"dictation-extended endpoints, {result.model} x{result.label}: "
                f"{result.dictation_extended} of {len(result.segments)} utterances"
            )
    for result in results:
        problems = result.keep_up_problems()
        if problems:
            shown = "; ".join(problems[:4]) + (" ..." if len(problems) > 4 else "")
            print(f"  {result.model} x{result.label}: {shown}")
    report_contention(results, clip, args)
    report_pass_batching(results)
    for model, max_pass_batch in dict.fromkeys((r.model, r.max_pass_batch) for r in results):
        alone = [
            r
            for r in results
            if r.model == model and r.max_pass_batch == max_pass_batch and not r.batch_load
        ]
        highest = 0
        for result in sorted(alone, key=lambda r: r.concurrency):
            if result.keep_up_problems():
                break
            highest = result.concurrency
        tested = ",".join(str(r.concurrency) for r in alone)
        setting = "" if max_pass_batch is None else f" (pass batch {max_pass_batch})"
        print(
            f"highest concurrency that keeps up, {model}{setting}: {highest or 'none'} "
            f"(tested {tested})"
        )
    print()
    target = next(
        (r for r in results if r.model == TARGET_MODEL and r.concurrency == 1 and not r.batch_load),
        None,
    )
    if target is None:
        print(f"targets: not checked ({TARGET_MODEL} at 1 session was not run)")
        return
    first = target.values("first_partial_ms")
    final = target.values("final_delay_ms")
    after = target.values("final_after_vad_ms")
    for label, values, limit in (
        ("first partial p50", first, TARGET_FIRST_PARTIAL_MS),
        ("final delay p50 (from end of speech)", final, TARGET_FINAL_DELAY_MS),
    ):
        if not values:
            print(f"target {label} <= {limit:.0f} ms: NOT MEASURED")
            continue
        p50 = percentile(values, 0.5)
        verdict = "met" if p50 <= limit else "MISSED"
        print(f"target {TARGET_MODEL} x1 {label} <= {limit:.0f} ms: {p50:.0f} ms, {verdict}")
    if after:
        p50 = percentile(after, 0.5)
        verdict = "would be met" if p50 <= TARGET_FINAL_DELAY_MS else "would also be missed"
        hangover = hangover_ms(target.sessions[0].config if target.sessions else {})
        print(
            f"  (final delay p50 counted from the VAD's end decision, without the "
            f"{hangover} ms minimum silence: {p50:.0f} ms, {verdict})"
        )
    report_scheduler_targets(results)


def report_scheduler_targets(results: list[ConfigResult]) -> None:
    """The scheduler milestone's targets for tiny.en on this machine, per pass-batch
    setting: 1 session's first partial, and 8 sessions' first partial and final."""
    for concurrency, name, title, limit in SCHEDULER_TARGETS:
        for result in results:
            if (result.model, result.concurrency) != (TARGET_MODEL, concurrency):
                continue
            if result.batch_load:
                continue
            values = result.values(name)
            if not values:
                print(f"scheduler target x{result.label} {title} <= {limit:.0f} ms: NOT MEASURED")
                continue
            p50 = percentile(values, 0.5)
            verdict = "met" if p50 <= limit and not result.keep_up_problems() else "MISSED"
            print(
                f"scheduler target {TARGET_MODEL} x{result.label} {title} p50 <= {limit:.0f} ms "
                f"(keeping up): {p50:.0f} ms, {verdict}"
            )


def dump_json(
    path: Path,
    results: list[ConfigResult],
    batch: dict[str, tuple[str, float]],
    session_config: dict[str, Any],
) -> None:
    data = {
        "session_config": session_config,
        "batch": {m: {"text": t, "seconds": s} for m, (t, s) in batch.items()},
        "configs": [
            {
                "model": r.model,
                "concurrency": r.concurrency,
                "srv_ttfb_ms": r.srv_ttfb_ms,
                "srv_final_ms": r.srv_final_ms,
                "dictation_extended": r.dictation_extended,
                "keep_up_problems": r.keep_up_problems(),
                "sessions": [
                    {
                        "text": s.text,
                        "errors": s.errors,
                        "drain_ms": s.drain_ms,
                        "growth_ms": s.growth_ms,
                        "wer_batch": s.wer_batch,
                        "wer_reference": s.wer_reference,
                        "segments": [vars(seg) for seg in s.segments],
                    }
                    for s in r.sessions
                ],
            }
            for r in results
        ],
    }
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


@dataclass
class Run:
    """What every measured configuration of one model shares."""

    server: RunningServer
    client: httpx.Client
    model: str
    language: str | None
    clip: StreamClip
    args: argparse.Namespace
    theo_pids: list[int]
    batch: dict[str, tuple[str, float]]
    max_pass_batch: int | None = None


def measure(run: Run, concurrency: int, batch_load: int) -> ConfigResult:
    """Stream ``concurrency`` sessions, with ``batch_load`` batch requests running beside."""
    server, client, model, args = run.server, run.client, run.model, run.args
    wait_idle(server.process.pid, 60.0)
    before = stream_metrics(client, server.base_url)
    meter = CpuMeter(run.theo_pids)
    load = BatchLoad(
        server.base_url,
        model,
        run.language,
        load_clip_of(run.clip, args.batch_seconds),
        batch_load,
    )
    meter.start()
    began = time.perf_counter()
    with load:
        time.sleep(1.0 if batch_load else 0.0)  # the batch work is under way first
        traces = asyncio.run(
            run_config(server.base_url, model, run.language, run.clip, concurrency, args)
        )
    wall = time.perf_counter() - began
    theo_cores, other_cores = meter.stop()
    if run.max_pass_batch is not None:
        time.sleep(_PASS_BATCH_HEALTH_S * 1.5)  # the workers' counters, as of a fresh probe
    after = stream_metrics(client, server.base_url)
    sessions = [analyse_session(trace, run.batch[model][0], run.clip.reference) for trace in traces]
    result = ConfigResult(
        model=model,
        concurrency=concurrency,
        sessions=sessions,
        srv_ttfb_ms=metric_mean_ms(before, after, "theo_stt_ttfb_seconds"),
        srv_final_ms=metric_mean_ms(before, after, "theo_stt_final_delay_seconds"),
        dictation_extended=metric_delta(
            before, after, "theo_stt_dictation_extended_endpoints_total"
        ),
        wall_s=wall,
        theo_cores=theo_cores,
        other_cores=other_cores,
        drain_limit_ms=args.drain_limit * 1000,
        growth_limit_ms=args.growth_limit * 1000,
        batch_load=batch_load,
        batch_done=load.done,
        max_pass_batch=run.max_pass_batch,
        mean_pass_batch=mean_pass_batch(before, after),
    )
    if load.errors:
        raise RuntimeError(f"batch requests failed under load: {load.errors}")
    first = quantiles(result.values("first_partial_ms"))[0]
    final = quantiles(result.values("final_delay_ms"))[0]
    log(
        f"{model} x{result.label}: {wall:.0f} s, first partial p50 {first} ms, "
        f"final p50 {final} ms, problems: {result.keep_up_problems() or 'none'}"
    )
    for index, session in enumerate(sessions):
        log(f"  session {index} finals: {session.text!r}")
    for text, seconds in load.done:
        log(f"  batch request: {seconds:.1f} s: {text[:80]!r}...")
    return result


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Stream a clip at real-time pace into WS /v1/realtime and report latency."
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(DEFAULT_MODELS),
        help="catalog models, each NAME or NAME:C1,C2,... (default: %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        default=DEFAULT_CONCURRENCY,
        help="sessions per run for models without their own list (default: %(default)s)",
    )
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="audio to stream")
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="stream the clip this many times per session, 0.6 s apart (default: %(default)s)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="cut the streamed audio to this length (skips the reference WER)",
    )
    parser.add_argument(
        "--language", default="en", help="language of the sessions and batch ('' for none)"
    )
    parser.add_argument(
        "--theo-home",
        type=Path,
        default=None,
        help="existing THEO_HOME (models are pulled there if missing); default: a temporary one",
    )
    parser.add_argument("--tail-silence", type=float, default=1.0, help="seconds after the clip")
    parser.add_argument(
        "--stagger-ms", type=float, default=0.0, help="delay between session starts"
    )
    parser.add_argument(
        "--drain-limit",
        type=float,
        default=2.0,
        help="seconds after the last frame by which every final must have arrived",
    )
    parser.add_argument(
        "--growth-limit", type=float, default=0.5, help="seconds a session's delay may grow"
    )
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=6.0,
        help="audio streamed in one untimed session per model first (0: none)",
    )
    parser.add_argument(
        "--session-config",
        default=None,
        metavar="JSON",
        help="JSON object of session.configure fields sent at the start of every session, "
        "the warm-up included, e.g. '{\"dictation\": false}' (default: none)",
    )
    parser.add_argument(
        "--batch-load",
        type=int,
        default=0,
        help="also run every level with this many batch requests of a long recording "
        "running beside the sessions, and compare (default: none)",
    )
    parser.add_argument(
        "--batch-seconds",
        type=float,
        default=60.0,
        help="length of the batch-load recording: the clip repeated (default: %(default)s)",
    )
    parser.add_argument(
        "--pass-batch",
        default=None,
        metavar="N1,N2,...",
        help="run the whole plan once per THEO_SCHEDULER__MAX_PASS_BATCH value (a fresh "
        "server each), e.g. '1,4' for partial-pass batching off and on, and compare "
        "(default: the server's own setting, one run)",
    )
    parser.add_argument("--startup-timeout", type=float, default=300.0, help="seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temporary directory and server log"
    )
    args = parser.parse_args(argv)
    try:
        args.plan = parse_models(args.models, parse_int_list(args.concurrency))
        args.pass_batch = parse_int_list(args.pass_batch) if args.pass_batch else None
        args.session_config = (
            parse_session_config(args.session_config) if args.session_config else {}
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.repeat < 1 or args.tail_silence < 0.5:
        parser.error("--repeat must be >= 1 and --tail-silence >= 0.5 (the VAD needs silence)")
    return args


def serve_and_measure(
    args: argparse.Namespace,
    home: Path,
    models_dir: Path,
    log_path: Path,
    clip: StreamClip,
    max_pass_batch: int | None,
) -> tuple[list[ConfigResult], dict[str, tuple[str, float]]]:
    """Start ``theo serve`` (with ``max_pass_batch`` when set), measure every level of the
    plan, and stop it."""
    language: str | None = args.language or None
    extra_env: dict[str, str] = {}
    if args.theo_home is None and "THEO_ITN_CACHE_DIR" not in os.environ:
        # A fresh home would compile the NeMo ITN grammars again (~15 s of CPU);
        # reuse the copy the end-to-end tests keep.
        extra_env["THEO_ITN_CACHE_DIR"] = str(REPO_ROOT / ".theo-test-cache" / "itn")
    if max_pass_batch is not None:
        extra_env["THEO_SCHEDULER__MAX_PASS_BATCH"] = str(max_pass_batch)
        # The batch-size counters come with the workers' health probes.
        extra_env["THEO_WORKER__HEALTH_INTERVAL_S"] = str(_PASS_BATCH_HEALTH_S)
        log(f"starting theo serve, THEO_SCHEDULER__MAX_PASS_BATCH={max_pass_batch}")
    else:
        log("starting theo serve")
    server = start_server(home, log_path, models_dir, extra_env)
    try:
        started = time.perf_counter()
        health = server.wait_ready(args.startup_timeout)
        log(f"server healthy in {time.perf_counter() - started:.1f} s: {health.get('workers')}")
        server_pid = server.process.pid
        theo_pids = [server_pid, *(int(w["pid"]) for w in health.get("workers", []))]
        waited = wait_idle(server_pid, args.startup_timeout)
        log(f"server idle after {waited:.1f} s more")

        results: list[ConfigResult] = []
        batch: dict[str, tuple[str, float]] = {}
        with httpx.Client(timeout=httpx.Timeout(900.0)) as client:
            for model, levels in args.plan:
                batch_transcribe(client, server.base_url, model, language, clip)  # warm-up
                batch[model] = batch_transcribe(client, server.base_url, model, language, clip)
                log(f"{model} batch: {batch[model][1] * 1000:.0f} ms: {batch[model][0]!r}")
                if args.warmup_seconds > 0:
                    log(f"{model}: warm-up session ({args.warmup_seconds:.0f} s of audio)")
                    warm = StreamClip(
                        "warm-up",
                        clip.pcm16[: round(args.warmup_seconds * clip.sample_rate) * 2],
                        clip.sample_rate,
                        None,
                    )
                    asyncio.run(run_config(server.base_url, model, language, warm, 1, args))
                run = Run(
                    server, client, model, language, clip, args, theo_pids, batch, max_pass_batch
                )
                for concurrency in levels:
                    for load in (0, args.batch_load) if args.batch_load else (0,):
                        results.append(measure(run, concurrency, load))
        return results, batch
    finally:
        log("stopping theo serve")
        server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan: list[tuple[str, list[int]]] = args.plan
    clip = load_clip(args.clip.resolve(), args.repeat, args.max_seconds)
    log(f"clip {clip.name}: {clip.duration_s:.2f} s, plan {plan}")
    if args.session_config:
        log(f"session.configure at every session start: {json.dumps(args.session_config)}")
    workdir = Path(tempfile.mkdtemp(prefix="theo-stream-bench-"))
    log_path = workdir / "theo.log"
    failed = True
    try:
        home, models_dir = model_links(args.theo_home, workdir, (m for m, _ in plan), log_path)

        results: list[ConfigResult] = []
        batch: dict[str, tuple[str, float]] = {}
        for max_pass_batch in args.pass_batch or [None]:
            found, batch = serve_and_measure(args, home, models_dir, log_path, clip, max_pass_batch)
            results += found
        report(results, batch, clip, args)
        if args.json:
            dump_json(args.json, results, batch, args.session_config)
        failed = False
    finally:
        if failed or args.keep_temp:
            log(f"server log and temp files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
