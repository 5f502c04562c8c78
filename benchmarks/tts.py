"""Text-to-speech benchmark: Theo's ``POST /v1/audio/speech`` against the engines called directly.

One run of this script:

1. installs the models with ``theo pull`` into a temporary ``THEO_HOME`` (or uses
   ``--theo-home``);
2. starts ``theo serve`` with them on a free port and waits for ``GET /health`` to say ``ok``;
3. loads the same engines in this process, from the same model directories and with the
   settings Theo's workers use (Piper: its voice's own scales; Kokoro: voice ``jm_kumo``,
   ``en-us``, speed 1);
4. for a short text (one sentence) and a long text (a paragraph of nine sentences) times,
   alternately (the order rotating every round, each timed run right after a one-word
   synthesis on the same path, so every path runs with its model's weights in cache)
   and never concurrently:

   * ``theo_<format>``: one streamed ``POST /v1/audio/speech`` on a kept-alive connection;
     time to first audio byte (TTFA) and to the last byte;
   * ``direct``: the engine's own streaming call on the whole text (Piper
     ``PiperVoice.synthesize``, which yields one chunk per sentence; Kokoro
     ``Kokoro.create_stream``, which yields one chunk per phoneme batch); TTFA is its first
     chunk;
   * ``direct_split``: the engine called on the pieces Theo's splitter makes (a short first
     piece, then sentences), one after the other: what Theo's worker does, without the
     serving path, so ``theo / direct_split`` is the serving overhead alone;

5. prints medians (p90 with ``--runs >= 5``), the real-time factor (synthesis time / audio
   duration) and the ratios, then checks the targets: TTFA theo/direct <= 1.2 and Piper's
   TTFA through Theo <= 250 ms;
6. stops the server whatever happens.

Usage (from the repository root)::

    THEO_DOWNLOAD_CACHE_DIR=$PWD/.theo-test-cache/downloads HF_HUB_OFFLINE=1 \\
        .venv/bin/python benchmarks/tts.py
    .venv/bin/python benchmarks/tts.py --models piper-en-us-joe-medium --runs 10 --formats pcm,mp3
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import numpy as np
from harness import ensure_model, log, percentile

from tests.helpers.server import RunningServer, start_server

PIPER = "piper-en-us-joe-medium"
KOKORO = "kokoro-v1"
TEXTS = {
    "short": "Hello! Thanks for calling, how can I help you today?",
    "long": (
        "The old lighthouse stood at the edge of the cliff for more than a hundred years. "
        "Every night its keeper climbed the narrow stairs to light the great lamp. "
        "Ships passing in the dark relied on that steady beam to find their way home. "
        "Nobody in the village could remember a single night when the light had failed. "
        "In the winter, the wind howled around the tower and the waves crashed below. "
        "The keeper wrote in his logbook every evening, noting the weather and the ships. "
        "His daughter learned to trim the wick and polish the glass before she could read. "
        "When the storm finally came, the light kept shining until morning. "
        "The next day, the fishermen walked up the hill to thank them both."
    ),
}
PRIMER = "Hello."
SETTLE_S = 0.15
"""Pause before each priming call: onnxruntime's threads spin for ~40 ms after a run by
default (the direct engines keep that default), and a spinning process must not slow the
next path down."""
TARGET_TTFA_RATIO = 1.2
TARGET_PIPER_TTFA_MS = 250.0


# --------------------------------------------------------------------------- direct engines


@dataclass
class Timing:
    """One synthesis: seconds to the first audio, seconds to the end, audio seconds."""

    ttfa_s: float
    total_s: float
    audio_s: float


class DirectEngine:
    """An engine in this process, configured as Theo's worker configures it."""

    sample_rate: int

    def stream(self, text: str) -> Timing:
        """The engine's own streaming call on the whole text."""
        raise NotImplementedError

    def pieces(self, text: str) -> Timing:
        """The engine on Theo's pieces of the text, one after the other."""
        from theo.engines.tts.chunking import split_text  # noqa: PLC0415

        started = time.perf_counter()
        first = 0.0
        samples = 0
        for piece in split_text(text):
            samples += self.synthesize(piece.text).size + round(piece.pause_s * self.sample_rate)
            first = first or time.perf_counter() - started
        return Timing(first, time.perf_counter() - started, samples / self.sample_rate)

    def synthesize(self, text: str) -> np.ndarray:
        """One piece of text to float samples."""
        raise NotImplementedError


class DirectPiper(DirectEngine):
    def __init__(self, model_dir: Path) -> None:
        from piper import PiperVoice, SynthesisConfig  # noqa: PLC0415 - heavy, loaded once

        model = next(model_dir.glob("*.onnx"))
        self.voice = PiperVoice.load(model, config_path=f"{model}.json")
        self.config = SynthesisConfig(volume=0.9)
        self.sample_rate = self.voice.config.sample_rate
        self.synthesize("Hello.")

    def stream(self, text: str) -> Timing:
        started = time.perf_counter()
        first = 0.0
        samples = 0
        for chunk in self.voice.synthesize(text, self.config):
            samples += chunk.audio_int16_array.size
            first = first or time.perf_counter() - started
        return Timing(first, time.perf_counter() - started, samples / self.sample_rate)

    def synthesize(self, text: str) -> np.ndarray:
        chunks = [c.audio_float_array for c in self.voice.synthesize(text, self.config)]
        return np.concatenate(chunks)


class DirectKokoro(DirectEngine):
    def __init__(self, model_dir: Path) -> None:
        from kokoro_onnx import Kokoro  # noqa: PLC0415 - heavy, loaded once

        self.kokoro = Kokoro(str(model_dir / "model.onnx"), str(model_dir / "voices.npz"))
        self.sample_rate = 24_000
        self.synthesize("Hello.")

    def stream(self, text: str) -> Timing:
        async def run() -> Timing:
            started = time.perf_counter()
            first = 0.0
            samples = 0
            async for audio, _ in self.kokoro.create_stream(text, voice="jm_kumo", lang="en-us"):
                samples += audio.size
                first = first or time.perf_counter() - started
            return Timing(first, time.perf_counter() - started, samples / self.sample_rate)

        return asyncio.run(run())

    def synthesize(self, text: str) -> np.ndarray:
        audio, _ = self.kokoro.create(text, voice="jm_kumo", lang="en-us")
        return audio


ENGINES: dict[str, Callable[[Path], DirectEngine]] = {PIPER: DirectPiper, KOKORO: DirectKokoro}


# --------------------------------------------------------------------------- theo


def theo_speech(client: httpx.Client, base_url: str, model: str, text: str, fmt: str) -> Timing:
    """One streamed POST: time to the first body bytes and to the last."""
    body = {"model": model, "input": text, "response_format": fmt}
    started = time.perf_counter()
    first = 0.0
    data = bytearray()
    with client.stream("POST", f"{base_url}/v1/audio/speech", json=body) as response:
        if response.status_code != 200:
            response.read()
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
        rate = int(response.headers["x-sample-rate"])
        for chunk in response.iter_raw():
            if chunk:
                first = first or time.perf_counter() - started
                data.extend(chunk)
    total = time.perf_counter() - started
    if fmt == "pcm":
        audio_s = len(data) / 2 / rate
    else:
        from theo.audio.decode import decode_audio  # noqa: PLC0415

        audio_s = decode_audio(bytes(data)).duration_s
    return Timing(first, total, audio_s)


# --------------------------------------------------------------------------- measurement


@dataclass
class Series:
    timings: list[Timing] = field(default_factory=list)

    def ttfa_ms(self) -> list[float]:
        return [t.ttfa_s * 1000 for t in self.timings]

    def rtf(self) -> list[float]:
        return [t.total_s / t.audio_s for t in self.timings]


@dataclass(frozen=True)
class TimedPath:
    """One timed path, and an untimed call that primes its process's caches."""

    run: Callable[[], Timing]
    prime: Callable[[], object]


def measure(paths: dict[str, TimedPath], runs: int, warmup: int) -> dict[str, Series]:
    """Warm up, then one run of each path per round, interleaved, never concurrent.

    Every timed run comes right after its own priming call (a one-word synthesis on the
    same path): the model's weights are then in cache whichever process ran before, so
    no path pays for another one's cache misses. Each priming call waits ``SETTLE_S``
    first, so no process still spins from the path before. The order also rotates every
    round.
    """
    for _ in range(warmup):
        for path in paths.values():
            path.run()
    result = {name: Series() for name in paths}
    names = list(paths)
    for round_index in range(runs):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            time.sleep(SETTLE_S)
            paths[name].prime()
            result[name].timings.append(paths[name].run())
    return result


def _stat(values: list[float], runs: int) -> str:
    median = statistics.median(values)
    if runs >= 5:
        return f"{median:7.0f} / {percentile(values, 0.9):5.0f}"
    return f"{median:7.0f}"


def print_table(results: dict[tuple[str, str], dict[str, Series]], runs: int) -> None:
    head = "TTFA ms p50 / p90" if runs >= 5 else "TTFA ms p50"
    print(f"{'model':24} | {'text':5} | {'series':12} | {head:>17} | {'RTF p50':>7} | audio s")
    print("-" * 24 + "-+-------+-" + "-" * 12 + "-+-" + "-" * 17 + "-+---------+--------")
    for (model, text), series in results.items():
        for name, values in series.items():
            audio = statistics.median(t.audio_s for t in values.timings)
            print(
                f"{model:24} | {text:5} | {name:12} | {_stat(values.ttfa_ms(), runs):>17} | "
                f"{statistics.median(values.rtf()):7.3f} | {audio:6.1f}"
            )


def verdicts(results: dict[tuple[str, str], dict[str, Series]], fmt: str) -> list[str]:
    lines: list[str] = []
    theo = f"theo_{fmt}"
    for (model, text), series in results.items():
        ttfa = {name: statistics.median(s.ttfa_ms()) for name, s in series.items()}
        ratio = ttfa[theo] / ttfa["direct"]
        overhead = ttfa[theo] - ttfa["direct_split"]
        verdict = "meets" if ratio <= TARGET_TTFA_RATIO else "MISSES"
        lines.append(
            f"{model} {text}: TTFA theo/direct {ratio:.2f} ({verdict} <= {TARGET_TTFA_RATIO}); "
            f"serving overhead vs direct_split {overhead:+.0f} ms; RTF theo "
            f"{statistics.median(series[theo].rtf()):.3f} vs direct "
            f"{statistics.median(series['direct'].rtf()):.3f}"
        )
        if model == PIPER:
            verdict = "meets" if ttfa[theo] <= TARGET_PIPER_TTFA_MS else "MISSES"
            lines.append(
                f"{model} {text}: TTFA through Theo {ttfa[theo]:.0f} ms "
                f"({verdict} <= {TARGET_PIPER_TTFA_MS:.0f} ms)"
            )
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=f"{PIPER},{KOKORO}", help="comma-separated models")
    parser.add_argument("--theo-home", type=Path, default=None, help="existing THEO_HOME")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per path and text")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per path and text")
    parser.add_argument(
        "--formats", default="pcm", help="response formats timed through Theo (first: verdict)"
    )
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir and log")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = [m for m in models if m not in ENGINES]
    if unknown:
        raise SystemExit(f"no direct engine for {unknown}; known: {sorted(ENGINES)}")
    workdir = Path(tempfile.mkdtemp(prefix="theo-tts-bench-"))
    server: RunningServer | None = None
    failed = True
    log_path = workdir / "theo.log"
    try:
        home = args.theo_home.expanduser().resolve() if args.theo_home else workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        model_dirs = {m: ensure_model(home, m, log_path) for m in models}
        served = workdir / "served"
        served.mkdir()
        for model, model_dir in model_dirs.items():
            (served / model).symlink_to(model_dir)
        log("starting theo serve")
        server = start_server(home, log_path, models_dir=served)
        started = time.perf_counter()
        server.wait_ready(args.startup_timeout)
        log(f"server healthy in {time.perf_counter() - started:.1f} s")
        engines: dict[str, DirectEngine] = {}
        for model, model_dir in model_dirs.items():
            engines[model] = ENGINES[model](model_dir)
        results: dict[tuple[str, str], dict[str, Series]] = {}
        with httpx.Client(timeout=httpx.Timeout(600.0)) as client:
            for model in models:
                engine = engines[model]
                for text_name, text in TEXTS.items():
                    log(f"{model} / {text_name}")
                    paths: dict[str, TimedPath] = {
                        f"theo_{fmt}": TimedPath(
                            lambda fmt=fmt, model=model, text=text: theo_speech(
                                client, server.base_url, model, text, fmt
                            ),
                            lambda fmt=fmt, model=model: theo_speech(
                                client, server.base_url, model, PRIMER, fmt
                            ),
                        )
                        for fmt in formats
                    }
                    prime = partial(engine.synthesize, PRIMER)
                    paths["direct"] = TimedPath(partial(engine.stream, text), prime)
                    paths["direct_split"] = TimedPath(partial(engine.pieces, text), prime)
                    results[(model, text_name)] = measure(paths, args.runs, args.warmup)
        print()
        print(f"runs={args.runs}, warmup={args.warmup}, interleaved, formats={formats}")
        print(f"texts: short {len(TEXTS['short'])} chars, long {len(TEXTS['long'])} chars")
        print()
        print_table(results, args.runs)
        print()
        for line in verdicts(results, formats[0]):
            print(line)
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
