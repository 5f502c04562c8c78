"""Decode memory benchmark: the API process's peak RSS growth for one upload, against its length.

One run of this script:

1. installs the model with ``theo pull`` into a temporary ``THEO_HOME`` (or uses ``--theo-home``);
2. builds 16 kHz mono FLAC files of real speech (``en_librivox.wav`` looped with 0.5 s gaps)
   lasting each of ``--minutes`` (default 1, 10 and 60 minutes);
3. for each length, starts a fresh ``theo serve`` (so no earlier request's freed-but-kept
   heap hides this one's cost), sends one short warm-up request, then
   ``POST /v1/audio/transcriptions`` with the file and measures the growth of the API
   process's (the ``theo serve`` process's) resident set over its RSS before the request:
   the kernel's high-water mark is reset first (``/proc/<pid>/clear_refs``) and ``VmHWM`` is
   read after the answer, with ``VmRSS`` sampled every 5 ms as a fallback; it also reports
   what stays resident after the answer;
4. for comparison, runs in a fresh subprocess per length and path, measured the same way:

   * ``theo_prepare``: ``theo.server.batch.prepare_audio`` on the open file in a thread,
     the decode the API process runs (decode + preprocessing + PCM16), without serving;
   * ``fw_decode``: ``faster_whisper.decode_audio(path)``, the raw engine's own decoder (what
     calling faster-whisper directly costs);

5. prints one table: peak growth in MB, MB per minute of audio, and the ratio to the audio's
   16 kHz PCM16 size (1.83 MiB per minute), which is what the engine receives;
6. stops each server (SIGTERM, then wait) whatever happens.

Usage (from the repository root)::

    THEO_DOWNLOAD_CACHE_DIR=$PWD/.theo-test-cache/downloads HF_HUB_OFFLINE=1 \\
        .venv/bin/python benchmarks/decode_memory.py
    .venv/bin/python benchmarks/decode_memory.py --minutes 1,10 --theo-home ~/.theo
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from harness import ensure_model, log

from tests.helpers.memory import Growth, measure_growth
from tests.helpers.server import start_server

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "audio"
SPEECH = FIXTURES / "en_librivox.wav"
WARMUP = FIXTURES / "en_short.wav"
SAMPLE_RATE = 16_000
MIB = 1024 * 1024
PCM16_MIB_PER_MINUTE = 60 * SAMPLE_RATE * 2 / MIB


# --------------------------------------------------------------------------- audio


def build_flac(out_path: Path, minutes: float) -> None:
    """Write ``minutes`` of the speech fixture, looped with 0.5 s gaps, as 16 kHz FLAC."""
    with wave.open(str(SPEECH), "rb") as reader:
        assert reader.getframerate() == SAMPLE_RATE and reader.getnchannels() == 1
        speech = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    looped = np.concatenate([speech, np.zeros(SAMPLE_RATE // 2, dtype="<i2")])
    total = round(minutes * 60 * SAMPLE_RATE)
    with av.open(str(out_path), "w", format="flac") as container:
        stream = container.add_stream("flac", rate=SAMPLE_RATE, layout="mono")
        done = 0
        while done < total:
            block = np.ascontiguousarray(looped[: total - done].reshape(1, -1))
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            for packet in stream.encode(frame):
                container.mux(packet)
            done += block.shape[1]
        for packet in stream.encode(None):
            container.mux(packet)


# --------------------------------------------------------------------------- memory


# --------------------------------------------------------------------------- in-process paths


def probe(mode: str, path: Path) -> dict[str, Any]:
    """Run one in-process path on ``path`` in this (fresh) process and measure it."""
    if mode == "theo_prepare":
        from theo.manifest import PreprocessingConfig  # noqa: PLC0415 - only in the probe
        from theo.server.batch import prepare_audio  # noqa: PLC0415

        config = PreprocessingConfig()
        prepare_audio(WARMUP.read_bytes(), config, {})  # first-use costs, as the warm-up POST

        def run() -> int:
            # In a worker thread, as the server runs it (asyncio.to_thread).
            sizes: list[int] = []
            with path.open("rb") as handle:
                worker = threading.Thread(
                    target=lambda: sizes.append(len(prepare_audio(handle, config, {})))
                )
                worker.start()
                worker.join()
            return sizes[0] // 2

    elif mode == "fw_decode":
        from faster_whisper import decode_audio  # noqa: PLC0415 - only in the probe

        decode_audio(str(WARMUP), sampling_rate=SAMPLE_RATE)

        def run() -> int:
            return int(decode_audio(str(path), sampling_rate=SAMPLE_RATE).size)

    else:
        raise SystemExit(f"unknown probe mode {mode!r}")
    samples, growth = measure_growth("self", run)
    return {"samples": samples, "peak": growth.peak_mib, "retained": growth.retained_mib}


def run_probe(mode: str, path: Path) -> dict[str, Any]:
    """``probe`` in a fresh interpreter, so no earlier run's heap is reused."""
    result = subprocess.run(
        [sys.executable, __file__, "--probe", mode, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"probe {mode} failed:\n{result.stderr[-2000:]}")
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


# --------------------------------------------------------------------------- the server path


@dataclass
class Row:
    minutes: float
    flac_mib: float
    path: str
    peak_mib: float
    retained_mib: float | None
    note: str

    @property
    def pcm_mib(self) -> float:
        return self.minutes * PCM16_MIB_PER_MINUTE


def serve_and_measure(
    home: Path, models_dir: Path, log_path: Path, model: str, flac: Path, timeout_s: float
) -> tuple[Growth, str]:
    """A fresh ``theo serve``, one warm-up request, then the measured upload of ``flac``."""
    log("starting theo serve")
    server = start_server(
        home,
        log_path,
        models_dir,
        extra_env={
            # The 60-minute FLAC is ~55 MB; the default upload limit is 25 MiB.
            "THEO_MAX_FILE_SIZE_MB": "512",
            "THEO_REQUEST_TIMEOUT_S": str(timeout_s),
        },
        ready_timeout=300.0,
    )
    try:
        with httpx.Client(base_url=server.base_url, timeout=timeout_s + 60) as client:

            def post(path: Path) -> httpx.Response:
                with path.open("rb") as handle:
                    return client.post(
                        "/v1/audio/transcriptions",
                        files={"file": (path.name, handle)},
                        data={"model": model, "response_format": "json"},
                    )

            warm = post(WARMUP)
            if warm.status_code != 200:
                raise RuntimeError(f"warm-up failed: {warm.status_code} {warm.text[:300]}")
            started = time.perf_counter()
            response, growth = measure_growth(server.process.pid, lambda: post(flac))
            elapsed = time.perf_counter() - started
        if response.status_code == 200:
            words = len(str(response.json()["text"]).split())
            note = f"200, {words} words, {elapsed:.0f} s"
        else:
            note = f"{response.status_code}: {response.text[:80]}"
        return growth, note
    finally:
        log("stopping theo serve")
        server.stop()


# --------------------------------------------------------------------------- report


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'audio':>6} | {'FLAC MiB':>8} | {'PCM16 MiB':>9} | {'path':14} | {'peak MiB':>8} | "
        f"{'MiB/min':>7} | {'x PCM16':>7} | {'kept MiB':>8} | note"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        kept = "" if row.retained_mib is None else f"{row.retained_mib:8.1f}"
        print(
            f"{row.minutes:>4g} m | {row.flac_mib:8.1f} | {row.pcm_mib:9.1f} | {row.path:14} | "
            f"{row.peak_mib:8.1f} | {row.peak_mib / row.minutes:7.2f} | "
            f"{row.peak_mib / row.pcm_mib:7.2f} | {kept:>8} | {row.note}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="faster-whisper-tiny.en", help="catalog model")
    parser.add_argument("--theo-home", type=Path, default=None, help="existing THEO_HOME")
    parser.add_argument("--minutes", default="1,10,60", help="comma-separated audio lengths")
    parser.add_argument("--request-timeout", type=float, default=1800.0)
    parser.add_argument("--no-server", action="store_true", help="in-process paths only")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir and log")
    parser.add_argument("--probe", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.probe:
        mode, path = args.probe
        print(json.dumps(probe(mode, Path(path))))
        return 0
    lengths = [float(m) for m in args.minutes.split(",") if m.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="theo-decode-memory-"))
    failed = True
    rows: list[Row] = []
    log_path = workdir / "theo.log"
    try:
        home = args.theo_home.expanduser().resolve() if args.theo_home else workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        served = workdir / "served"
        if not args.no_server:
            model_dir = ensure_model(home, args.model, log_path)
            served.mkdir()
            (served / args.model).symlink_to(model_dir)
        for minutes in lengths:
            flac = workdir / f"speech_{minutes:g}min.flac"
            build_flac(flac, minutes)
            flac_mib = flac.stat().st_size / MIB
            log(f"{minutes:g} min: {flac_mib:.1f} MiB FLAC")
            if not args.no_server:
                growth, note = serve_and_measure(
                    home, served, log_path, args.model, flac, args.request_timeout
                )
                if not growth.exact:
                    note += " (sampled peak)"
                rows.append(
                    Row(
                        minutes,
                        flac_mib,
                        "theo serve",
                        growth.peak_mib,
                        growth.retained_mib,
                        note,
                    )
                )
                log(f"  theo serve: +{growth.peak_mib:.1f} MiB ({note})")
            for mode in ("theo_prepare", "fw_decode"):
                result = run_probe(mode, flac)
                seconds = result["samples"] / SAMPLE_RATE
                rows.append(
                    Row(
                        minutes,
                        flac_mib,
                        mode,
                        result["peak"],
                        result["retained"],
                        f"in-process, {seconds:.0f} s decoded",
                    )
                )
                log(f"  {mode}: +{result['peak']:.1f} MiB")
        print()
        print(
            f"model={args.model}; peak = growth of the process's resident set over its RSS "
            "before the request; kept = still resident after it; PCM16 = 16 kHz mono "
            f"({PCM16_MIB_PER_MINUTE:.2f} MiB/min)"
        )
        print()
        print_table(rows)
        failed = False
    finally:
        if failed or args.keep_temp:
            log(f"server log and temp files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
