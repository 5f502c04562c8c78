"""Batch transcription benchmark: Theo's HTTP API against faster-whisper called directly.

One run of this script:

1. installs the model with ``theo pull`` into a temporary ``THEO_HOME`` (or uses ``--theo-home``);
2. starts ``theo serve`` on a free port and waits for ``GET /health`` to say ``ok``;
3. loads faster-whisper in this process with the settings Theo's worker uses (same model
   directory, device, compute type, cpu_threads, beam size, VAD flag, temperature 0.0, no
   prompt, no word timestamps);
4. for a short clip (~3 s) and a long clip (>= 60 s) times, alternately and never concurrently,
   ``POST /v1/audio/transcriptions`` (``response_format=json``; send to full response) with
   Theo's pre- and post-processing switched off per request (``theo``: identical settings,
   so the ratio is the serving overhead), the same POST with Theo's default pipeline
   (``theo_pipeline``), and ``faster_whisper.decode_audio(path)`` + ``model.transcribe(...)``
   + iterating every segment;
   For the long clip the direct engine decodes several windows per call, as Theo's worker
   does for a ``json`` request (``BatchedInferencePipeline``, ``long_audio_batch`` windows).
   The engine packs its windows with its own VAD, cutting wherever 30 s run out; Theo's
   worker ends them at pauses and decodes again any speech a window left out, so the long
   transcripts may differ (Theo's loses fewer words) and the ratio includes that work;
   two more series time it window by window: ``theo_verbose_json`` (segment times wanted)
   and ``direct_windowed``;
5. prints median (and p90 when ``--runs >= 5``) per path, the theo/direct ratio, and warns
   if the two paths do not return the same text; then what batches of windows buy, in Theo
   and in the engine;
6. stops the server (SIGTERM, then wait) whatever happens.

Usage (from the repository root)::

    .venv/bin/python benchmarks/batch.py
    .venv/bin/python benchmarks/batch.py --model faster-whisper-tiny.en --runs 10 --warmup 2
    .venv/bin/python benchmarks/batch.py --theo-home ~/.theo --breakdown

Set ``THEO_DOWNLOAD_CACHE_DIR`` to reuse downloads between runs when the script pulls the
model itself. ``--breakdown`` adds per-phase timings (PyAV decode as the API does it, and a
gRPC call straight to the worker) to show where Theo's overhead comes from.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from harness import ensure_model, log, percentile

from tests.helpers.server import RunningServer, start_server
from tests.helpers.wer import normalize

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "audio"
DEFAULT_SHORT = FIXTURES / "en_short.wav"
LONG_SOURCE = FIXTURES / "en_librivox.wav"
LONG_MIN_SECONDS = 60.0
LONG_GAP_SECONDS = 0.5
SAMPLE_RATE = 16_000
TARGET_RATIO = 1.10


# --------------------------------------------------------------------------- helpers


def build_long_clip(source: Path, out_path: Path, min_seconds: float, gap_seconds: float) -> None:
    """Repeat ``source`` (a PCM WAV) separated by silent gaps until it lasts ``min_seconds``."""
    with wave.open(str(source), "rb") as reader:
        params = reader.getparams()
        frames = reader.readframes(reader.getnframes())
    frame_bytes = params.sampwidth * params.nchannels
    gap = b"\x00" * (round(gap_seconds * params.framerate) * frame_bytes)
    pieces: list[bytes] = []
    total_frames = 0
    while total_frames / params.framerate < min_seconds:
        if pieces:
            pieces.append(gap)
            total_frames += len(gap) // frame_bytes
        pieces.append(frames)
        total_frames += len(frames) // frame_bytes
    with wave.open(str(out_path), "wb") as writer:
        writer.setnchannels(params.nchannels)
        writer.setsampwidth(params.sampwidth)
        writer.setframerate(params.framerate)
        writer.writeframes(b"".join(pieces))


# --------------------------------------------------------------------------- the two paths


class DirectEngine:
    """faster-whisper in this process, configured exactly like Theo's worker."""

    def __init__(self, model_dir: Path, language: str | None) -> None:
        from faster_whisper import WhisperModel  # noqa: PLC0415 - heavy import, done once

        from theo.engines.stt.faster_whisper_backend import (  # noqa: PLC0415
            resolve_device,
            resolve_long_audio_batch,
        )
        from theo.manifest import ModelManifest  # noqa: PLC0415

        config = ModelManifest.load(model_dir).engine_config
        self.device, self.compute_type = resolve_device(config.device, config.compute_type)
        self.long_audio_batch = resolve_long_audio_batch(
            self.device, getattr(config, "long_audio_batch", 0)
        )
        self.cpu_threads = config.cpu_threads
        self.beam_size = config.beam_size
        self.vad_filter = config.vad_filter
        self.language = language
        self.model = WhisperModel(
            str(model_dir),
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=self.cpu_threads,
            local_files_only=True,
        )

    def describe(self) -> str:
        return (
            f"device={self.device} compute_type={self.compute_type} "
            f"cpu_threads={self.cpu_threads} beam_size={self.beam_size} "
            f"vad_filter={self.vad_filter} language={self.language} "
            f"long_audio_batch={self.long_audio_batch}"
        )

    def transcribe_audio(self, audio: Any, *, windowed: bool = False) -> str:
        """Transcribe float32 16 kHz samples, consuming every segment (as the worker does):
        audio longer than one window in batches of windows, as the worker decodes a ``json``
        request, unless ``windowed`` (as for ``verbose_json``)."""
        if not windowed and self.long_audio_batch > 1 and len(audio) > 30 * SAMPLE_RATE:
            from faster_whisper import BatchedInferencePipeline  # noqa: PLC0415

            segments, _info = BatchedInferencePipeline(self.model).transcribe(
                audio,
                language=self.language,
                task="transcribe",
                initial_prompt=None,
                temperature=0.0,
                beam_size=self.beam_size,
                batch_size=self.long_audio_batch,
                vad_filter=True,
            )
            return "".join(segment.text for segment in segments).strip()
        segments, _info = self.model.transcribe(
            audio,
            language=self.language,
            task="transcribe",
            initial_prompt=None,
            temperature=0.0,
            word_timestamps=False,
            beam_size=self.beam_size,
            vad_filter=self.vad_filter,
        )
        return "".join(segment.text for segment in segments).strip()

    def transcribe_file(self, path: Path, *, windowed: bool = False) -> str:
        """The timed direct path: ``decode_audio(path)`` + transcribe + iterate segments."""
        from faster_whisper import decode_audio  # noqa: PLC0415 - already imported by __init__

        audio = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
        return self.transcribe_audio(audio, windowed=windowed)


# Theo's default audio and text stages switched off, so the engine sees what it sees
# when called directly: the ratio then measures serving overhead alone.
RAW_FIELDS = {"itn": "false", "dc_remove": "false", "gain_normalize": "false", "denoise": "false"}


def post_transcription(
    client: httpx.Client,
    base_url: str,
    model: str,
    language: str | None,
    clip: Clip,
    *,
    raw: bool = True,
    response_format: str = "json",
) -> str:
    """The timed Theo path: one multipart POST, returning the ``text`` of the JSON answer.

    With ``raw`` the request switches off preprocessing and post-processing (identical
    settings to the direct engine); without it, Theo's default pipeline runs too.
    """
    data = {"model": model, "response_format": response_format, "temperature": "0"}
    if raw:
        data.update(RAW_FIELDS)
    if language:
        data["language"] = language
    response = client.post(
        f"{base_url}/v1/audio/transcriptions",
        data=data,
        files={"file": (clip.path.name, clip.payload, "audio/wav")},
    )
    if response.status_code != 200:
        raise RuntimeError(f"POST failed: HTTP {response.status_code}: {response.text[:500]}")
    return str(response.json()["text"]).strip()


class WorkerProbe:
    """For ``--breakdown``: calls the worker's gRPC ``TranscribeFile`` directly."""

    def __init__(self, port: int, model: str, language: str | None) -> None:
        import grpc  # noqa: PLC0415 - only needed for the breakdown

        from theo.wire.proto import stt_worker_pb2_grpc as pb_grpc  # noqa: PLC0415

        limit = 1024 * 1024 * 1024
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{port}",
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
            ],
        )
        self.stub = pb_grpc.STTWorkerStub(self.channel)
        self.model = model
        self.language = language

    def request(self, pcm16: bytes) -> Any:
        from theo.types import TranscribeParams, TranscribeRequest  # noqa: PLC0415
        from theo.wire.stt import request_to_proto  # noqa: PLC0415

        params = TranscribeParams(language=self.language)
        return request_to_proto(
            TranscribeRequest(model=self.model, audio_pcm16=pcm16, params=params)
        )

    def transcribe(self, message: Any) -> str:
        return str(self.stub.TranscribeFile(message, timeout=600).text).strip()

    def close(self) -> None:
        self.channel.close()


# --------------------------------------------------------------------------- measurement


@dataclass
class Clip:
    name: str
    path: Path
    payload: bytes = b""
    duration_s: float = 0.0


@dataclass
class Measurement:
    """Timings in milliseconds per series, plus the last transcript of each path."""

    times_ms: dict[str, list[float]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    def add(self, series: str, elapsed_s: float) -> None:
        self.times_ms.setdefault(series, []).append(elapsed_s * 1000.0)


def timed(func: Callable[[], str]) -> tuple[float, str]:
    started = time.perf_counter()
    text = func()
    return time.perf_counter() - started, text


def measure_clip(
    clip: Clip,
    runs: int,
    warmup: int,
    series: dict[str, Callable[[], str]],
) -> Measurement:
    """Warm up, then interleave one run of each series per round (never concurrently)."""
    result = Measurement()
    for index in range(warmup):
        for name, func in series.items():
            elapsed, _ = timed(func)
            log(f"{clip.name} warm-up {index + 1}/{warmup} {name}: {elapsed * 1000:.0f} ms")
    for index in range(runs):
        parts = []
        for name, func in series.items():
            elapsed, text = timed(func)
            result.add(name, elapsed)
            result.texts[name] = text
            parts.append(f"{name} {elapsed * 1000:.0f} ms")
        log(f"{clip.name} run {index + 1}/{runs}: " + ", ".join(parts))
    return result


def print_table(
    clips: list[Clip], measurements: dict[str, Measurement], runs: int, extra: list[str]
) -> None:
    show_p90 = runs >= 5
    headers = ["clip", "duration s", "theo median ms", "direct median ms", "ratio theo/direct"]
    if show_p90:
        headers[3:3] = ["theo p90 ms"]
        headers[5:5] = ["direct p90 ms"]
    headers.append("overhead ms")
    rows: list[list[str]] = []
    for clip in clips:
        times = measurements[clip.name].times_ms
        theo_med = statistics.median(times["theo"])
        direct_med = statistics.median(times["direct"])
        row = [clip.name, f"{clip.duration_s:.2f}", f"{theo_med:.1f}"]
        if show_p90:
            row.append(f"{percentile(times['theo'], 0.9):.1f}")
        row.append(f"{direct_med:.1f}")
        if show_p90:
            row.append(f"{percentile(times['direct'], 0.9):.1f}")
        row += [f"{theo_med / direct_med:.3f}", f"{theo_med - direct_med:+.1f}"]
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    if extra:
        print()
        print("other series (medians, ms; theo_pipeline = default pre- and post-processing on):")
        for clip in clips:
            times = measurements[clip.name].times_ms
            cells = [
                f"{name}={statistics.median(times[name]):.1f}" for name in extra if name in times
            ]
            print(f"  {clip.name}: " + "  ".join(cells))


def check_transcripts(clips: list[Clip], measurements: dict[str, Measurement]) -> bool:
    """Warn when the paths disagree; return True when every transcript matches exactly."""
    all_same = True
    for clip in clips:
        texts = measurements[clip.name].texts
        theo_text, direct_text = texts["theo"], texts["direct"]
        if theo_text == direct_text:
            print(f"transcripts {clip.name}: identical ({len(theo_text)} chars)")
            continue
        all_same = False
        lenient = normalize(theo_text) == normalize(direct_text)
        kind = "differ only in case/punctuation" if lenient else "DIFFER"
        print(f"WARNING: transcripts {clip.name}: {kind}", file=sys.stderr)
        print(f"  theo:   {theo_text!r}", file=sys.stderr)
        print(f"  direct: {direct_text!r}", file=sys.stderr)
    return all_same


def breakdown_series(clip: Clip, probe: WorkerProbe | None) -> dict[str, Callable[[], str]]:
    """Extra timed series isolating the phases of Theo's path for ``--breakdown``.

    * ``api_decode``: ``theo.server.batch.prepare_audio`` on the uploaded bytes with the
      stages off (PyAV decode, resampling to 16 kHz, PCM16), as the raw ``theo`` series runs;
    * ``fw_decode``: ``faster_whisper.decode_audio`` on the file, the direct path's decode;
    * ``worker_grpc``: ``TranscribeFile`` sent straight to the worker (gRPC transfer of the
      PCM16, int16->float32 conversion, inference, result serialisation), skipping the API.
    """
    from faster_whisper import decode_audio  # noqa: PLC0415

    from theo.manifest import PreprocessingConfig  # noqa: PLC0415
    from theo.server.batch import prepare_audio  # noqa: PLC0415

    raw = {"dc_remove": False, "gain_normalize": False, "denoise": "off"}

    def api_decode() -> str:
        prepare_audio(clip.payload, PreprocessingConfig(), raw)
        return ""

    def fw_decode() -> str:
        decode_audio(str(clip.path), sampling_rate=SAMPLE_RATE)
        return ""

    series: dict[str, Callable[[], str]] = {"api_decode": api_decode, "fw_decode": fw_decode}
    if probe is not None:
        message = probe.request(prepare_audio(clip.payload, PreprocessingConfig(), raw))

        def worker_grpc() -> str:
            return probe.transcribe(message)

        series["worker_grpc"] = worker_grpc
    return series


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compare Theo's batch transcription latency with faster-whisper used directly."
    )
    parser.add_argument("--model", default="faster-whisper-tiny.en", help="catalog model name")
    parser.add_argument(
        "--theo-home",
        type=Path,
        default=None,
        help="existing THEO_HOME to use (the model is pulled there if missing); "
        "default: a temporary home with a fresh `theo pull`",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per path and clip")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per path and clip")
    parser.add_argument("--short", type=Path, default=DEFAULT_SHORT, help="short clip")
    parser.add_argument(
        "--long",
        type=Path,
        default=None,
        help=f"long clip (>= 60 s); default: {LONG_SOURCE.name} repeated with "
        f"{LONG_GAP_SECONDS} s gaps to >= {LONG_MIN_SECONDS:.0f} s",
    )
    parser.add_argument(
        "--language", default="en", help="language sent to both paths ('' for none)"
    )
    parser.add_argument("--startup-timeout", type=float, default=300.0, help="seconds")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time PyAV decode as the API does it and a gRPC call straight to the worker",
    )
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temporary directory and server log"
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    language: str | None = args.language or None
    workdir = Path(tempfile.mkdtemp(prefix="theo-batch-bench-"))
    log_path = workdir / "theo.log"
    server: RunningServer | None = None
    probe: WorkerProbe | None = None
    failed = True
    try:
        home = args.theo_home.expanduser().resolve() if args.theo_home else workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        model_dir = ensure_model(home, args.model, log_path)

        long_path: Path = args.long or workdir / "long.wav"
        if args.long is None:
            build_long_clip(LONG_SOURCE, long_path, LONG_MIN_SECONDS, LONG_GAP_SECONDS)
        clips = [Clip("short", args.short.resolve()), Clip("long", long_path.resolve())]

        log("starting theo serve")
        server = start_server(home, log_path, models_dir=home / "models")
        started = time.perf_counter()
        health = server.wait_ready(args.startup_timeout)
        workers = health.get("workers", [])
        log(f"server healthy in {time.perf_counter() - started:.1f} s: {workers}")

        from faster_whisper import decode_audio  # noqa: PLC0415 - after the server starts

        direct = DirectEngine(model_dir, language)
        log(f"direct engine: {direct.describe()}")
        for clip in clips:
            clip.payload = clip.path.read_bytes()
            samples = decode_audio(str(clip.path), sampling_rate=SAMPLE_RATE)
            clip.duration_s = len(samples) / SAMPLE_RATE
            if clip.name == "long" and clip.duration_s < LONG_MIN_SECONDS:
                log(f"warning: long clip is only {clip.duration_s:.1f} s")

        if args.breakdown:
            port = next((int(w["port"]) for w in workers if w.get("model") == args.model), 0)
            if port:
                probe = WorkerProbe(port, args.model, language)
            else:
                log("no worker port in /health; skipping the worker_grpc series")
        measurements: dict[str, Measurement] = {}
        extra: list[str] = []
        with httpx.Client(timeout=httpx.Timeout(900.0)) as client:
            for clip in clips:

                def theo_path(clip: Clip = clip) -> str:
                    return post_transcription(client, server.base_url, args.model, language, clip)

                def direct_path(clip: Clip = clip) -> str:
                    return direct.transcribe_file(clip.path)

                def pipeline_path(clip: Clip = clip) -> str:
                    return post_transcription(
                        client, server.base_url, args.model, language, clip, raw=False
                    )

                def verbose_path(clip: Clip = clip) -> str:
                    return post_transcription(
                        client,
                        server.base_url,
                        args.model,
                        language,
                        clip,
                        response_format="verbose_json",
                    )

                def windowed_path(clip: Clip = clip) -> str:
                    return direct.transcribe_file(clip.path, windowed=True)

                series: dict[str, Callable[[], str]] = {
                    "theo": theo_path,
                    "theo_pipeline": pipeline_path,
                }
                if clip.name == "long":
                    # Segment times wanted: window by window, against the engine doing so.
                    series["theo_verbose_json"] = verbose_path
                    series["direct_windowed"] = windowed_path
                if args.breakdown:
                    series.update(breakdown_series(clip, probe))
                series["direct"] = direct_path
                measurements[clip.name] = measure_clip(clip, args.runs, args.warmup, series)
                extra = [name for name in series if name not in ("theo", "direct")]

        print()
        print(
            f"model {args.model} ({direct.describe()}), runs={args.runs}, "
            f"warmup={args.warmup}, interleaved"
        )
        print()
        print_table(clips, measurements, args.runs, extra)
        print()
        check_transcripts(clips, measurements)
        long_times = measurements["long"].times_ms
        if "theo_verbose_json" in long_times:
            batched, windowed = (
                statistics.median(long_times[name]) for name in ("theo", "theo_verbose_json")
            )
            raw_batched, raw_windowed = (
                statistics.median(long_times[name]) for name in ("direct", "direct_windowed")
            )
            print(
                f"long audio in batches of {direct.long_audio_batch} windows (json) against "
                f"window by window (verbose_json): theo {batched:.0f} / {windowed:.0f} ms = "
                f"{batched / windowed:.2f}x; direct {raw_batched:.0f} / {raw_windowed:.0f} ms = "
                f"{raw_batched / raw_windowed:.2f}x; verbose_json / direct windowed = "
                f"{windowed / raw_windowed:.3f}"
            )
        worst = max(
            statistics.median(m.times_ms["theo"]) / statistics.median(m.times_ms["direct"])
            for m in measurements.values()
        )
        verdict = "meets" if worst <= TARGET_RATIO else "MISSES"
        print(f"worst ratio {worst:.3f}: {verdict} the target of <= {TARGET_RATIO:.2f}")
        failed = False
    finally:
        if probe is not None:
            probe.close()
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
