"""VAD benchmark: cost of ``VADDetector.process`` per 20 ms frame, against bare Silero.

One run prints two tables:

1. **per-frame cost**: every 20 ms frame of a signal fed to a fresh ``VADDetector`` (one
   untimed warm-up pass, then ``--passes`` timed passes): median, p99 and mean
   microseconds per ``process`` call, the share of 32 ms windows the energy pre-filter
   answered without Silero, and the mean cost per 20 ms of audio of the raw model timed in
   the same run two ways: faster-whisper's ``SileroVADModel`` scoring the whole signal in
   one batched call (the cheapest the model can be run), and onnxruntime called once per
   window with the state carried (what streaming must do). Signals: ``en_librivox.wav``
   (27 s, 5 utterances) at each sensitivity, 10 s of digital silence and 10 s of white
   noise at -40 dBFS.
2. **concurrency**: 1, 2, 4 and 8 detectors sharing one model, each on its own thread
   (as ``asyncio.to_thread`` runs them) and feeding the LibriVox clip in 20 ms frames as
   fast as it can: the aggregate speed in seconds of audio per second of wall time.

Usage (from the repository root)::

    .venv/bin/python benchmarks/vad.py
    .venv/bin/python benchmarks/vad.py --passes 5

Needs faster-whisper in the environment (for the model file and the batched reference).
Progress goes to stderr, the tables to stdout. Timings on a small shared machine are
noisy; p99 in particular reflects other processes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import wave
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt

from theo.vad import SAMPLE_RATE, WINDOW_SAMPLES, Sensitivity, SileroModel, VADDetector

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "audio"
FRAME = SAMPLE_RATE * 20 // 1000
FRAMES_PER_WINDOW = WINDOW_SAMPLES / FRAME

Audio = npt.NDArray[np.float32]


def log(message: str) -> None:
    """Progress lines go to stderr so stdout holds only the results."""
    print(f"[vad-bench] {message}", file=sys.stderr, flush=True)


def read_wav(path: Path) -> Audio:
    """Mono 16 kHz PCM16 WAV as float32 in [-1, 1]."""
    with wave.open(str(path), "rb") as reader:
        assert reader.getframerate() == SAMPLE_RATE
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype=np.int16)
    return pcm.astype(np.float32) / 32768.0


def frames_of(audio: Audio) -> list[Audio]:
    """``audio`` cut into consecutive 20 ms frames."""
    return [audio[start : start + FRAME] for start in range(0, audio.size, FRAME)]


def time_detector(
    audio: Audio, model: SileroModel, sensitivity: Sensitivity, passes: int
) -> tuple[list[float], float]:
    """Microseconds per ``process`` call, and the share of windows the pre-filter answered."""
    frames = frames_of(audio)
    timings: list[float] = []
    share = 0.0
    for pass_index in range(passes + 1):
        detector = VADDetector(sensitivity, model=model)
        for frame in frames:
            started = time.perf_counter_ns()
            detector.process(frame)
            elapsed = time.perf_counter_ns() - started
            if pass_index:
                timings.append(elapsed / 1_000)
        detector.flush()
        share = detector.windows_prefiltered / detector.windows_total
    return timings, share


def time_batched_reference(audio: Audio, model_path: Path, passes: int) -> float:
    """Mean microseconds per 20 ms of audio of faster-whisper's one-call batched scoring."""
    from faster_whisper.vad import SileroVADModel  # noqa: PLC0415 - reference only

    reference = SileroVADModel(str(model_path))
    usable = audio[: audio.size // WINDOW_SAMPLES * WINDOW_SAMPLES]
    reference(usable.copy())
    started = time.perf_counter()
    for _ in range(passes):
        reference(usable.copy())  # it overwrites part of its input
    elapsed = time.perf_counter() - started
    return elapsed / passes / (usable.size / FRAME) * 1e6


def time_window_reference(audio: Audio, model: SileroModel, passes: int) -> float:
    """Mean microseconds per 20 ms of audio of onnxruntime called once per window."""
    usable = audio[: audio.size // WINDOW_SAMPLES * WINDOW_SAMPLES]
    windows = usable.reshape(-1, WINDOW_SAMPLES)
    total = 0.0
    for pass_index in range(passes + 1):
        classifier = model.classifier()
        started = time.perf_counter()
        for window in windows:
            classifier.probability(window)
        if pass_index:
            total += time.perf_counter() - started
    return total / passes / windows.shape[0] / FRAMES_PER_WINDOW * 1e6


def white_noise(seconds: float, dbfs: float) -> Audio:
    """Seeded white noise at an RMS of ``dbfs``."""
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(round(seconds * SAMPLE_RATE)) * 10 ** (dbfs / 20)
    return noise.astype(np.float32)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain-text table with right-aligned columns."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    print(f"\n{title}")
    for row in [headers, ["-" * width for width in widths], *rows]:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))


def cost_table(model: SileroModel, passes: int) -> None:
    """Per-frame cost of the detector on several signals, with the raw model beside it."""
    speech = read_wav(FIXTURES / "en_librivox.wav")
    signals: list[tuple[str, Audio, Sensitivity]] = [
        ("librivox", speech, "normal"),
        ("librivox", speech, "high"),
        ("librivox", speech, "low"),
        ("silence 10 s", np.zeros(10 * SAMPLE_RATE, dtype=np.float32), "normal"),
        ("white noise -40 dBFS", white_noise(10, -40), "normal"),
    ]
    batched = time_batched_reference(speech, model.path, passes)
    per_window = time_window_reference(speech, model, passes)
    rows: list[list[str]] = []
    for name, audio, sensitivity in signals:
        log(f"timing {name} ({sensitivity})")
        timings, share = time_detector(audio, model, sensitivity, passes)
        mean = statistics.fmean(timings)
        rows.append(
            [
                name,
                sensitivity,
                f"{statistics.median(timings):.0f}",
                f"{np.percentile(timings, 99):.0f}",
                f"{mean:.0f}",
                f"{share:.1%}",
                f"{mean / per_window:.2f}",
                f"{mean / batched:.2f}",
            ]
        )
    print_table(
        f"VAD cost per 20 ms frame (us), {passes} passes; raw Silero on librivox: "
        f"{per_window:.0f} us/20 ms one window per call, {batched:.0f} us/20 ms batched",
        ["signal", "sens.", "median", "p99", "mean", "prefiltered", "/window", "/batched"],
        rows,
    )


def concurrency_table(model: SileroModel) -> None:
    """Aggregate real-time factor of several detectors on threads sharing one model."""
    frames = frames_of(read_wav(FIXTURES / "en_librivox.wav"))
    audio_seconds = len(frames) * FRAME / SAMPLE_RATE

    def stream(_: int) -> None:
        detector = VADDetector(model=model)
        for frame in frames:
            detector.process(frame)
        detector.flush()

    rows: list[list[str]] = []
    for workers in (1, 2, 4, 8):
        log(f"concurrency {workers}")
        run: Callable[[int], None] = stream
        with ThreadPoolExecutor(max_workers=workers) as pool:
            started = time.perf_counter()
            list(pool.map(run, range(workers)))
            elapsed = time.perf_counter() - started
        speed = workers * audio_seconds / elapsed
        rows.append([str(workers), f"{elapsed:.2f}", f"{speed:.0f}x"])
    print_table(
        "Detectors on threads, one shared model (librivox, 20 ms frames)",
        ["streams", "wall s", "audio s per wall s"],
        rows,
    )


def main() -> None:
    """Parse options and print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--passes", type=int, default=3, help="timed passes per signal")
    options = parser.parse_args()
    model = SileroModel()
    cost_table(model, options.passes)
    concurrency_table(model)


if __name__ == "__main__":
    main()
