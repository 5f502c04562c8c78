"""Pipeline benchmark: cost of Theo's audio preprocessing chain, and soxr against SciPy.

One run of this script prints one table per builder in ``TABLE_BUILDERS``:

1. **preprocessing**: cost of one ``PreprocessingChain.process`` call on a 20 ms frame of
   real speech (``tests/fixtures/audio/en_librivox*.wav``, 27 s) for input at 16 kHz
   (DC removal + gain), 8 kHz (resampling + DC removal + RNNoise + gain; ``denoise: auto``
   turns RNNoise on for telephone-band input) and 44.1 kHz (resampling + DC removal +
   gain): mean, median and p99 in microseconds over every frame of ``--passes`` passes
   after one untimed warm-up pass, and the delay from a sample's arrival to its release
   at the VAD tap. The RNNoise library called directly on the same audio (two 480-sample
   frames at 48 kHz per 20 ms) is timed in the same run, so the 8 kHz row also shows its
   ratio to the bare denoiser. The target is a mean of at most 1 ms per 20 ms frame.
2. **resampling**: ``--seconds`` of 44.1 kHz and 8 kHz speech converted to 16 kHz by
   ``scipy.signal.resample_poly``, by ``soxr.resample`` and by Theo's ``Resample`` stage
   (a soxr stream fed the whole clip, then flushed), timed alternately ``--runs`` times;
   median in ms and the ratio of each to ``resample_poly``.

3. **post-processing**: per-sentence cost of the text chain (ITN -> entities -> hot
   words) on pt and en sentences, with the built-in ITN rules and, when the ``theo[itn]``
   extra is installed, with NeMo's grammars (built once into ``--itn-cache-dir``).

Usage (from the repository root)::

    .venv/bin/python benchmarks/pipelines.py
    .venv/bin/python benchmarks/pipelines.py --passes 5 --runs 50 --seconds 10

Timings on a small, shared machine are noisy; p99 in particular reflects other processes.
Progress goes to stderr, the tables to stdout. A further table (for example the text
post-processing chain) is one more function returning a :class:`Table`, appended to
``TABLE_BUILDERS``.
"""

from __future__ import annotations

import argparse
import ctypes
import math
import statistics
import sys
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]  # soxr ships no type information
from scipy import signal

from theo.manifest import PostProcessingConfig, PreprocessingConfig
from theo.postprocessing import NemoITNEngine, PostProcessingChain
from theo.postprocessing.itn import nemo_available
from theo.postprocessing.itn.builtin import BuiltinITNEngine
from theo.postprocessing.itn.engine import ITNEngine
from theo.preprocessing import ENGINE_SAMPLE_RATE, PreprocessingChain, Resample

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "audio"
FRAME_MS = 20
FRAME_BUDGET_US = 1_000.0

Audio = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Options:
    """Command-line settings shared by the table builders."""

    passes: int
    runs: int
    seconds: float
    itn_cache_dir: Path


@dataclass(frozen=True)
class Table:
    """One printed result table."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()


TableBuilder = Callable[[Options], Table]


def log(message: str) -> None:
    """Progress lines go to stderr so stdout holds only the results."""
    print(f"[pipelines-bench] {message}", file=sys.stderr, flush=True)


def read_wav(path: Path) -> tuple[Audio, int]:
    """Mono PCM16 WAV as float32 in [-1, 1] and its sample rate."""
    with wave.open(str(path), "rb") as reader:
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype=np.int16)
        return (pcm.astype(np.float32) / 32768.0), reader.getframerate()


def speech_at(rate: int) -> Audio:
    """The LibriVox recording at ``rate``: the 16 or 8 kHz fixture, else converted by SciPy."""
    if rate == 8_000:
        return read_wav(FIXTURES / "en_librivox_8k.wav")[0]
    speech, source_rate = read_wav(FIXTURES / "en_librivox.wav")
    if rate == source_rate:
        return speech
    common = math.gcd(rate, source_rate)
    converted = signal.resample_poly(speech, rate // common, source_rate // common)
    return np.asarray(converted, dtype=np.float32)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (``fraction`` in [0, 1]) of a non-empty sequence."""
    return float(np.percentile(np.asarray(values), fraction * 100))


# --------------------------------------------------------------------------- preprocessing


def split_frames(samples: Audio, rate: int) -> list[Audio]:
    """``samples`` cut into consecutive 20 ms frames."""
    step = rate * FRAME_MS // 1000
    return [samples[start : start + step] for start in range(0, samples.size, step)]


def time_chain_frames(samples: Audio, rate: int, passes: int) -> list[float]:
    """Microseconds per ``process`` call over every 20 ms frame, after a warm-up pass."""
    frames = split_frames(samples, rate)
    timings: list[float] = []
    for pass_index in range(passes + 1):
        chain = PreprocessingChain.build(PreprocessingConfig(), rate)
        for frame in frames:
            started = time.perf_counter_ns()
            chain.process(frame)
            elapsed = time.perf_counter_ns() - started
            if pass_index:
                timings.append(elapsed / 1_000)
        chain.flush()
    return timings


def vad_tap_delay_ms(samples: Audio, rate: int) -> tuple[float, float]:
    """Mean and largest time from a sample's arrival to its release at the VAD tap.

    A sample arrives when the 20 ms frame holding it is complete, so even a pass-through
    chain shows 10 ms on average; the rest is buffering inside the stages (soxr releases
    output in blocks, RNNoise works on 10 ms frames two frames late).
    """
    chain = PreprocessingChain.build(PreprocessingConfig(), rate)
    delays: list[npt.NDArray[np.float64]] = []
    released = 0
    consumed = 0
    for frame in split_frames(samples, rate):
        consumed += frame.size
        out = chain.process(frame).vad
        positions = np.arange(released, released + out.size) / ENGINE_SAMPLE_RATE
        delays.append(consumed / rate - positions)
        released += out.size
    chain.flush()
    every = np.concatenate(delays) * 1_000
    return float(np.mean(every)), float(np.max(every))


def time_rnnoise_direct(samples: Audio, rate: int, passes: int) -> list[float]:
    """Microseconds per 20 ms of the RNNoise library alone (no resampling, no buffering)."""
    from pyrnnoise import rnnoise  # type: ignore[import-untyped]  # noqa: PLC0415 - optional

    at_48k = np.asarray(soxr.resample(samples, rate, 48_000), dtype=np.float32) * 32768.0
    frame_size = int(rnnoise.FRAME_SIZE)
    per_20ms = 48_000 * FRAME_MS // 1000 // frame_size
    buffer = np.zeros(frame_size, dtype=np.float32)
    pointer = buffer.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    timings: list[float] = []
    for pass_index in range(passes + 1):
        state = rnnoise.create()
        try:
            usable = at_48k.size - at_48k.size % (frame_size * per_20ms)
            for start in range(0, usable, frame_size * per_20ms):
                started = time.perf_counter_ns()
                for offset in range(start, start + frame_size * per_20ms, frame_size):
                    buffer[:] = at_48k[offset : offset + frame_size]
                    rnnoise.lib.rnnoise_process_frame(state, pointer, pointer)
                elapsed = time.perf_counter_ns() - started
                if pass_index:
                    timings.append(elapsed / 1_000)
        finally:
            rnnoise.destroy(state)
    return timings


def preprocessing_table(options: Options) -> Table:
    """Per-frame cost of the preprocessing chain at three input rates."""
    scenarios = (
        (16_000, "dc + gain"),
        (8_000, "resample + dc + denoise + gain"),
        (44_100, "resample + dc + gain"),
    )
    rows: list[tuple[str, ...]] = []
    log("timing RNNoise called directly")
    direct = time_rnnoise_direct(speech_at(ENGINE_SAMPLE_RATE), ENGINE_SAMPLE_RATE, options.passes)
    direct_mean = statistics.fmean(direct)
    for rate, stages in scenarios:
        log(f"timing the chain at {rate} Hz")
        speech = speech_at(rate)
        timings = time_chain_frames(speech, rate, options.passes)
        mean = statistics.fmean(timings)
        delay_mean, delay_max = vad_tap_delay_ms(speech, rate)
        denoised = PreprocessingChain.build(PreprocessingConfig(), rate).denoise_enabled
        rows.append(
            (
                f"{rate / 1000:g} kHz",
                stages,
                str(len(timings)),
                f"{mean:.0f}",
                f"{statistics.median(timings):.0f}",
                f"{percentile(timings, 0.99):.0f}",
                f"{mean / (FRAME_MS * 10):.1f}%",
                f"{mean / direct_mean:.2f}x" if denoised else "-",
                f"{delay_mean:.0f} / {delay_max:.0f}",
                "yes" if mean <= FRAME_BUDGET_US else "NO",
            )
        )
    rows.append(
        (
            "RNNoise direct",
            "2 x 480 samples @ 48 kHz",
            str(len(direct)),
            f"{direct_mean:.0f}",
            f"{statistics.median(direct):.0f}",
            f"{percentile(direct, 0.99):.0f}",
            f"{direct_mean / (FRAME_MS * 10):.1f}%",
            "1.00x",
            "-",
            "-",
        )
    )
    return Table(
        title=f"Preprocessing chain: cost per {FRAME_MS} ms frame (default config)",
        headers=(
            "input",
            "stages",
            "frames",
            "mean us",
            "median us",
            "p99 us",
            "CPU of real time",
            "vs RNNoise",
            "VAD-tap delay mean / max ms",
            "<= 1 ms",
        ),
        rows=tuple(rows),
        notes=(
            f"target: mean <= {FRAME_BUDGET_US:.0f} us per {FRAME_MS} ms frame. soxr releases "
            "output in blocks, so most calls of a resampling chain are cheap and a few carry "
            "the work: the mean is the CPU budget, p99 the cost of a block.",
        ),
    )


# --------------------------------------------------------------------------- resampling


def resample_with_stage(samples: Audio, rate: int) -> Audio:
    """Theo's streaming resampler fed the whole clip, then flushed."""
    stage = Resample(rate, ENGINE_SAMPLE_RATE)
    return np.concatenate([stage.process(samples), stage.flush()])


def resample_with_soxr(samples: Audio, rate: int) -> Audio:
    """soxr's one-shot conversion (high quality, as the stage uses)."""
    return np.asarray(soxr.resample(samples, rate, ENGINE_SAMPLE_RATE), dtype=np.float32)


def resample_with_scipy(samples: Audio, rate: int) -> Audio:
    """SciPy's polyphase conversion with its default Kaiser window."""
    common = math.gcd(rate, ENGINE_SAMPLE_RATE)
    converted = signal.resample_poly(samples, ENGINE_SAMPLE_RATE // common, rate // common)
    return np.asarray(converted, dtype=np.float32)


def resampling_table(options: Options) -> Table:
    """soxr (one-shot and Theo's stage) against ``resample_poly`` on the same clips."""
    methods: tuple[tuple[str, Callable[[Audio, int], Audio]], ...] = (
        ("scipy resample_poly", resample_with_scipy),
        ("soxr.resample", resample_with_soxr),
        ("theo Resample (soxr stream)", resample_with_stage),
    )
    rows: list[tuple[str, ...]] = []
    for rate in (44_100, 8_000):
        clip = speech_at(rate)[: round(options.seconds * rate)]
        log(f"timing resamplers on {clip.size / rate:.1f} s at {rate} Hz")
        timings: dict[str, list[float]] = {name: [] for name, _ in methods}
        for run in range(options.runs + 1):
            for name, method in methods:
                started = time.perf_counter_ns()
                method(clip, rate)
                elapsed = time.perf_counter_ns() - started
                if run:
                    timings[name].append(elapsed / 1e6)
        baseline = statistics.median(timings[methods[0][0]])
        for name, _ in methods:
            median = statistics.median(timings[name])
            rows.append(
                (
                    f"{rate / 1000:g} kHz -> 16 kHz",
                    name,
                    f"{median:.2f}",
                    f"{median / baseline:.2f}x",
                )
            )
    return Table(
        title=f"Resampling {options.seconds:g} s of speech to 16 kHz ({options.runs} runs)",
        headers=("conversion", "method", "median ms", "vs resample_poly"),
        rows=tuple(rows),
    )


_SENTENCES: tuple[tuple[str, str], ...] = (
    ("pt", "o valor da fatura é de dois mil e quinhentos reais e cinquenta centavos"),
    ("pt", "meu cpf é um dois três quatro cinco seis sete oito nove zero zero"),
    ("pt", "quero fazer um piques de cem reais para minha mãe às catorze horas e trinta"),
    ("en", "the total was one thousand two hundred thirty four dollars and fifty cents"),
    ("en", "he was not an ill disposed young man and he paid twenty percent"),
)


def _time_chain(chain: PostProcessingChain, runs: int) -> list[float]:
    timings: list[float] = []
    for run in range(runs + 1):
        for language, sentence in _SENTENCES:
            started = time.perf_counter_ns()
            chain.process(sentence, language)
            if run:
                timings.append((time.perf_counter_ns() - started) / 1e3)
    return timings


def postprocessing_table(options: Options) -> Table:
    """Per-sentence cost of the text chain (ITN, entities, hot words), built-in vs NeMo."""
    config = PostProcessingConfig(hot_words=["PIX", "TED", "Itaú"])
    engines: list[tuple[str, ITNEngine]] = [("built-in rules", BuiltinITNEngine())]
    notes: list[str] = []
    if nemo_available():
        nemo = NemoITNEngine(options.itn_cache_dir)
        log(f"warming NeMo grammars in {options.itn_cache_dir}")
        started = time.perf_counter()
        nemo.warm_up()
        notes.append(f"NeMo grammars ready in {time.perf_counter() - started:.1f} s (cached).")
        engines.append(("NeMo grammars", nemo))
    else:
        notes.append("NeMo not installed (pip install 'theo-openvoice[itn]'): built-in only.")
    rows: list[tuple[str, ...]] = []
    baseline = 0.0
    for name, engine in engines:
        chain = PostProcessingChain.build(config, itn_engine=engine)
        chain.process("aquecimento", "pt")
        timings = _time_chain(chain, options.runs)
        median = statistics.median(timings)
        baseline = baseline or median
        rows.append(
            (
                name,
                str(len(timings)),
                f"{median:.0f}",
                f"{percentile(timings, 0.99):.0f}",
                f"{median / baseline:.1f}x",
            )
        )
    return Table(
        title=f"Post-processing chain per sentence ({len(_SENTENCES)} pt/en sentences)",
        headers=("ITN engine", "sentences", "median µs", "p99 µs", "vs built-in"),
        rows=tuple(rows),
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- output


TABLE_BUILDERS: tuple[TableBuilder, ...] = (
    preprocessing_table,
    resampling_table,
    postprocessing_table,
)


def render(table: Table) -> str:
    """A Markdown table with its title and notes."""
    widths = [
        max(len(cell) for cell in column) for column in zip(table.headers, *table.rows, strict=True)
    ]

    def line(cells: Sequence[str]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    parts = [f"### {table.title}", "", line(table.headers)]
    parts.append("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    parts.extend(line(row) for row in table.rows)
    parts.extend(f"\n{note}" for note in table.notes)
    return "\n".join(parts) + "\n"


def parse_args(argv: Sequence[str] | None) -> Options:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--passes", type=int, default=3, help="timed passes over the clip")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per resampler")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length to resample")
    parser.add_argument(
        "--itn-cache-dir",
        type=Path,
        default=Path(__file__).resolve().parents[1] / ".theo-test-cache" / "itn",
        help="where NeMo's compiled grammars are kept between runs",
    )
    args = parser.parse_args(argv)
    if args.passes < 1 or args.runs < 1 or args.seconds <= 0:
        parser.error("--passes and --runs must be >= 1 and --seconds > 0")
    return Options(
        passes=args.passes, runs=args.runs, seconds=args.seconds, itn_cache_dir=args.itn_cache_dir
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Build and print every table."""
    options = parse_args(argv)
    for builder in TABLE_BUILDERS:
        print(render(builder(options)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
