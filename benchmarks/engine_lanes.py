"""Engine lanes: CTranslate2 threads per call against calls side by side, on the raw engine.

What ``THEO_SCHEDULER__ENGINE_LANES`` rests on. One run of this script:

1. installs each model with ``theo pull`` into a temporary ``THEO_HOME`` (or uses
   ``--theo-home``);
2. cuts eight 3-5 s pieces of real speech (``en_librivox.wav``), the length of a realtime
   segment;
3. for each engine layout, loads the model with faster-whisper directly
   (``WhisperModel(cpu_threads=T, num_workers=L)``: L CTranslate2 replicas of T threads):

   * ``1 lane x N threads`` (N: the machine's cores): one call at a time with every core,
     Theo's layout before lanes;
   * ``L lanes x 1 thread`` (L: the cores): Theo's default on 2 cores;
   * ``L lanes x N threads``: each call with every core, the cores oversubscribed when
     calls run side by side;

4. times, per layout, window size (10 s: a partial pass, 15 s: a final) and beam (1 and
   5), one encoder pass + generation of each piece **alone** (median), and the eight
   pieces decoded by **two threads at once** (per piece: the throughput when two streams
   decode side by side), after two untimed decodes;
5. prints one table, and the ratios of the default layout to the old one.

Usage (from the repository root)::

    THEO_DOWNLOAD_CACHE_DIR=$PWD/.theo-test-cache/downloads HF_HUB_OFFLINE=1 \\
        .venv/bin/python benchmarks/engine_lanes.py
    .venv/bin/python benchmarks/engine_lanes.py --models faster-whisper-tiny.en \\
        --theo-home ~/.theo
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from harness import ensure_model, log

from theo.cores import available_cores

REPO_ROOT = Path(__file__).resolve().parent.parent
SPEECH = REPO_ROOT / "tests" / "fixtures" / "audio" / "en_librivox.wav"
_PIECE_STARTS_S = (0, 4, 8, 12, 16, 20, 24, 2)


@dataclass(frozen=True)
class Row:
    model: str
    layout: str
    window_s: int
    beam: int
    alone_ms: float
    side_by_side_ms: float


def _pieces() -> list[np.ndarray[Any, np.dtype[np.float32]]]:
    audio, rate = sf.read(SPEECH, dtype="float32")
    assert rate == 16_000, rate
    return [
        audio[int(start * rate) : int((start + 3 + index % 3) * rate)]
        for index, start in enumerate(_PIECE_STARTS_S)
    ]


def _measure(model_dir: Path, threads: int, lanes: int, label: str) -> list[Row]:
    import ctranslate2  # noqa: PLC0415 - the engine, imported once the harness logged
    from faster_whisper import WhisperModel  # noqa: PLC0415
    from faster_whisper.audio import pad_or_trim  # noqa: PLC0415
    from faster_whisper.tokenizer import Tokenizer  # noqa: PLC0415

    model = WhisperModel(
        str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads, num_workers=lanes
    )
    tokenizer = Tokenizer(
        model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en"
    )
    prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
    pieces = _pieces()
    rows = []
    for window_s in (10, 15):
        features = [pad_or_trim(model.feature_extractor(p), window_s * 100) for p in pieces]
        for beam in (1, 5):

            def decode(index: int, beam: int = beam, features: list[Any] = features) -> float:
                started = time.perf_counter()
                batch = ctranslate2.StorageView.from_array(features[index][None])
                encoded = model.model.encode(batch, to_cpu=True)
                model.model.generate(encoded, [prompt], beam_size=beam, max_length=120)
                return time.perf_counter() - started

            for index in range(2):
                decode(index)
            alone = statistics.median(decode(i) for i in range(len(pieces)))
            side_by_side = _two_at_once(decode, len(pieces))
            rows.append(
                Row(model_dir.name, label, window_s, beam, alone * 1000, side_by_side * 1000)
            )
            log(f"{model_dir.name} {label} {window_s} s beam {beam}: {rows[-1]}")
    return rows


def _two_at_once(decode: Callable[[int], float], count: int) -> float:
    """Seconds per piece when two threads decode the pieces between them."""
    started = time.perf_counter()
    threads = [
        threading.Thread(target=lambda k=k: [decode(i) for i in range(k, count, 2)])
        for k in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models", default="faster-whisper-tiny.en,faster-whisper-base")
    parser.add_argument("--theo-home", type=Path, default=None)
    args = parser.parse_args()
    cores = available_cores()
    layouts = [
        (cores, 1, f"1 lane x {cores} threads"),
        (1, cores, f"{cores} lanes x 1 thread"),
        (cores, cores, f"{cores} lanes x {cores} threads"),
    ]
    with tempfile.TemporaryDirectory(prefix="theo-lanes-bench-") as temp:
        home = args.theo_home or Path(temp) / "home"
        rows: list[Row] = []
        for model in args.models.split(","):
            model_dir = ensure_model(home, model, Path(temp) / "pull.log")
            for threads, lanes, label in layouts:
                rows.extend(_measure(model_dir, threads, lanes, label))
    print(
        f"\nraw faster-whisper, int8 CPU, {cores} cores; ms per 3-5 s piece (encoder + generation)"
    )
    print(f"{'model':<23}| {'layout':<21}| window | beam | alone | two at once")
    for row in rows:
        print(
            f"{row.model:<23}| {row.layout:<21}| {row.window_s:>4} s | {row.beam:>4} "
            f"| {row.alone_ms:>5.0f} | {row.side_by_side_ms:>5.0f}"
        )
    print()
    old = layouts[0][2]
    for model in args.models.split(","):
        for window_s in (10, 15):
            for beam in (1, 5):
                pick = {
                    r.layout: r
                    for r in rows
                    if (r.model, r.window_s, r.beam) == (model, window_s, beam)
                }
                for _, _, new in layouts[1:]:
                    print(
                        f"{model} {window_s} s beam {beam}: alone {new}/{old} = "
                        f"{pick[new].alone_ms / pick[old].alone_ms:.2f}x; two at once "
                        f"{pick[new].side_by_side_ms / pick[old].side_by_side_ms:.2f}x"
                    )


if __name__ == "__main__":
    main()
