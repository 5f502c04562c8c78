"""Echo guard benchmark: Theo's numpy ``EchoGuard`` against library echo cancellers.

Every method gets the same synthetic calls: an agent reply (LibriVox clip 0870 of
``en_librivox.wav``, 7.1 s, English so that its words can be looked for in a transcript)
played by the client and heard back in its microphone through an echo path, and, in the
double-talk variant, the caller (``en_short.wav``, "he was not an ill disposed young man")
speaking over it from 3.0 s. Echo paths:

* ``room``: a 200-3400 Hz band-pass (2nd order, a small loudspeaker) and 30 ms of decaying
  reflections, then delayed and attenuated, plus white mic noise at -60 dBFS;
* ``phone``: the same with G.711 mu-law on the way out and back and a soft-saturating
  loudspeaker (``tanh``), echo that no linear filter models exactly.

Each method is told only what a session knows: the reference on the playback clock (each
chunk placed back to back from the mic position it was sent at), never the delay.
Methods: ``none`` (the raw mic), ``subtract`` (the aligned reference scaled by its
least-squares gain, subtracted, with the *true* delay: the best that plain subtraction
can do), ``numpy`` (``theo.session.echo_guard.EchoGuard``), and, when they import,
``livekit`` (``livekit.rtc.AudioProcessingModule``, WebRTC AEC3 through LiveKit's Rust
FFI), ``webrtc`` (``pywebrtc_audio.EchoCanceller``, AEC3) and ``speex`` (``pyaec``,
speexdsp's MDF filter through aec-rs, 600 ms filter, its preprocessor's residual echo
suppression on).

Columns: **ERLE** (dB) mic over output power on the echo-only call, over frames whose
echo is 10 dB above the noise (median and worst over the attenuations and delays);
**flag** frames ``EchoGuard`` called near-end on the echo-only call (numpy only);
**VAD** Silero ``speech_start`` events (Theo's ``VADDetector``, normal sensitivity, 250 ms
minimum) on the cleaned echo-only call: each would be a false barge-in; on the
double-talk call, **flag delay** from the caller's speech onset (first 20 ms frame above
-35 dBFS) to the first near-end frame, **VAD delay** to the ``speech_start`` event, and
**kept** the caller's level in the output over its level alone (dB) while it speaks;
**us/frame** mean CPU per 20 ms of audio. With ``--transcribe`` faster-whisper tiny.en
(beam 5, int8) transcribes each method's cleaned double-talk call: caller words found and
agent words leaked.

Usage (from the repository root)::

    .venv/bin/python benchmarks/echo_guard.py
    .venv/bin/python benchmarks/echo_guard.py --quick --transcribe --theo-home ~/.theo

The library AECs are not dependencies of Theo; install them next to it to compare (for
example ``pip install --target /tmp/aeclibs livekit pywebrtc-audio pyaec`` and run with
``PYTHONPATH=/tmp/aeclibs``). Progress goes to stderr, the tables to stdout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from harness import ensure_model, log
from scipy import signal

from tests.helpers.audio import read_wav
from theo.session.echo_guard import EchoGuard
from theo.vad import VADDetector

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "audio"
TEST_CACHE = REPO_ROOT / ".theo-test-cache"
AGENT_SECONDS = 7.1  # clip 0870 of en_librivox.wav
AGENT_TEXT = (
    "and mister john dashwood had then leisure to consider how much there might be "
    "prudently in his power to do for them"
)
CALLER_TEXT = "he was not an ill disposed young man"
CALLER_AT_S = 3.0
NOISE_DBFS = -60.0
CHUNK_MS = 200  # reference chunks as the speaker sends them
AHEAD_S = 1.0  # how far ahead of playback the speaker sends

Float = npt.NDArray[np.float64]
Int16 = npt.NDArray[np.int16]


@dataclass(frozen=True)
class Call:
    rate: int
    path: str
    atten_db: int
    delay_ms: int
    reference: Int16
    mic: Int16
    echo: Float
    caller: Float


def load(name: str, rate: int, seconds: float | None = None) -> Float:
    samples, source_rate = read_wav(FIXTURES / name)
    audio = samples.astype(np.float64)
    if seconds is not None:
        audio = audio[: int(seconds * source_rate)]
    return signal.resample_poly(audio, rate, source_rate) if rate != source_rate else audio


def speech_only(clip: Float, rate: int) -> Float:
    """The clip from 20 ms before its first frame above -35 dBFS, faded in over 10 ms.

    The recordings start with ~0.25 s of room noise; left in, that noise starting mid-call
    would be the first thing heard beyond the echo, not the caller's speech.
    """
    n = rate // 50
    levels = 10 * np.log10(
        np.mean((clip[: clip.size // n * n].reshape(-1, n) / 32768) ** 2, axis=1) + 1e-12
    )
    start = max(0, int(np.argmax(levels > -35)) * n - n)
    out = clip[start:].copy()
    fade = rate // 100
    out[:fade] *= np.linspace(0.0, 1.0, fade)
    return out


def mulaw(x: Float) -> Float:
    """G.711 mu-law encode and decode (continuous companding, 8-bit quantization)."""
    y = np.sign(x) * np.log1p(255 * np.minimum(np.abs(x) / 32768, 1)) / np.log1p(255)
    y = np.round(y * 127) / 127
    return np.sign(y) * (np.power(256, np.abs(y)) - 1) / 255 * 32768


def echo_path(audio: Float, rate: int, path: str) -> Float:
    rng = np.random.default_rng(1)
    n = int(0.03 * rate)
    response = np.zeros(n)
    response[0] = 1.0
    response[1:] = rng.standard_normal(n - 1) * np.exp(-np.arange(1, n) / (0.008 * rate)) * 0.3
    b, a = signal.butter(2, [200, min(3400, rate * 0.45)], btype="band", fs=rate)
    response = signal.lfilter(b, a, response)
    if path == "phone":
        audio = mulaw(audio)
        played = signal.lfilter(response, [1.0], audio)
        peak = np.max(np.abs(played))
        return mulaw(np.tanh(played / peak * 1.5) * peak / 1.5)
    return signal.lfilter(response, [1.0], audio)


def make_call(rate: int, path: str, atten_db: int, delay_ms: int, double_talk: bool) -> Call:
    reference = load("en_librivox.wav", rate, AGENT_SECONDS)
    echo = echo_path(reference, rate, path)
    echo *= 10 ** (atten_db / 20) * np.sqrt(np.mean(reference**2) / np.mean(echo**2))
    delay = rate * delay_ms // 1000
    total = reference.size + delay + rate
    echo_track = np.zeros(total)
    echo_track[delay : delay + echo.size] = echo
    caller_track = np.zeros(total)
    if double_talk:
        caller = speech_only(load("en_short.wav", rate), rate)
        at = int(CALLER_AT_S * rate)
        caller_track[at : at + caller.size] = caller[: total - at]
    noise = np.random.default_rng(7).standard_normal(total) * 32768 * 10 ** (NOISE_DBFS / 20)
    mic = np.clip(np.round(echo_track + caller_track + noise), -32768, 32767).astype(np.int16)
    ref16 = np.clip(np.round(reference), -32768, 32767).astype(np.int16)
    return Call(rate, path, atten_db, delay_ms, ref16, mic, echo_track, caller_track)


# ---------------------------------------------------------------------------- methods


@dataclass
class Output:
    audio: Int16
    flags: npt.NDArray[np.bool_] | None  # per 20 ms frame, numpy only
    seconds: float  # CPU time spent in the method


def playback_reference(call: Call) -> Float:
    """The reference where a session places it: back to back from its first send."""
    out = np.zeros(call.mic.size)
    out[: call.reference.size] = call.reference
    return out


def run_none(call: Call) -> Output:
    return Output(call.mic.copy(), None, 0.0)


def run_subtract(call: Call) -> Output:
    """Oracle: the best single lag within 5 ms of the true delay, least-squares gain."""
    started = time.perf_counter()
    played = playback_reference(call)
    mic = call.mic.astype(np.float64)
    best: tuple[float, Float] = (-1.0, np.zeros_like(mic))
    true_delay = call.rate * call.delay_ms // 1000
    for delay in range(true_delay - call.rate // 200, true_delay + call.rate // 200 + 1):
        aligned = np.zeros_like(played)
        aligned[delay:] = played[: played.size - delay]
        dot = float(np.dot(mic, aligned))
        energy = float(np.dot(aligned, aligned))
        if dot * dot / energy > best[0]:
            best = (dot * dot / energy, dot / energy * aligned)
    out = np.clip(np.round(mic - best[1]), -32768, 32767).astype(np.int16)
    return Output(out, None, time.perf_counter() - started)


def run_numpy(call: Call) -> Output:
    guard = EchoGuard(call.rate)
    frame = call.rate // 50
    chunk = call.rate * CHUNK_MS // 1000
    sent = 0
    audio: list[Int16] = []
    flags: list[bool] = []
    spent = 0.0
    for start in range(0, call.mic.size - frame + 1, frame):
        while sent < call.reference.size and sent < start + AHEAD_S * call.rate:
            guard.reference(call.reference[sent : sent + chunk], position=start)
            sent += chunk
        began = time.perf_counter()
        result = guard.process(call.mic[start : start + frame])
        spent += time.perf_counter() - began
        audio.append(result.audio)
        flags.append(result.near_end)
    return Output(np.concatenate(audio), np.array(flags), spent)


def _by_10ms(call: Call, step: Callable[[Int16, Int16], Int16]) -> Output:
    played = np.round(playback_reference(call)).astype(np.int16)
    n = call.rate // 100
    audio: list[Int16] = []
    began = time.perf_counter()
    for start in range(0, call.mic.size - n + 1, n):
        audio.append(step(call.mic[start : start + n], played[start : start + n]))
    return Output(np.concatenate(audio), None, time.perf_counter() - began)


def run_livekit(call: Call) -> Output:
    from livekit import rtc  # noqa: PLC0415  # optional, not a Theo dependency

    apm = rtc.AudioProcessingModule(echo_cancellation=True, high_pass_filter=True)
    n = call.rate // 100

    def step(near: Int16, far: Int16) -> Int16:
        far_frame = rtc.AudioFrame(far.tobytes(), call.rate, 1, n)
        apm.process_reverse_stream(far_frame)
        near_frame = rtc.AudioFrame(near.tobytes(), call.rate, 1, n)
        apm.process_stream(near_frame)
        return np.frombuffer(bytes(near_frame.data), dtype=np.int16).copy()

    return _by_10ms(call, step)


def run_webrtc(call: Call) -> Output:
    from pywebrtc_audio import EchoCanceller  # noqa: PLC0415  # optional

    if call.rate == 16000:
        canceller = EchoCanceller(sample_rate=call.rate, stream_delay_ms=0)
        return _by_10ms(call, canceller.process)

    # Its AEC runs at 16/32/48 kHz only: a session at 8 kHz would resample both ways.
    def up(x: npt.ArrayLike) -> Int16:
        y = signal.resample_poly(np.asarray(x, dtype=np.float64), 16000, call.rate)
        return np.clip(np.round(y), -32768, 32767).astype(np.int16)

    wide = Call(
        16000,
        call.path,
        call.atten_db,
        call.delay_ms,
        up(call.reference),
        up(call.mic),
        call.echo,
        call.caller,
    )
    out = run_webrtc(wide)
    narrow = signal.resample_poly(out.audio.astype(np.float64), call.rate, 16000)
    audio = np.clip(np.round(narrow), -32768, 32767).astype(np.int16)[: call.mic.size]
    return Output(audio, None, out.seconds)


def run_speex(call: Call) -> Output:
    import pyaec  # noqa: PLC0415  # optional

    n = call.rate // 100
    aec = pyaec.Aec(n, int(0.6 * call.rate), call.rate, True)

    def step(near: Int16, far: Int16) -> Int16:
        return np.array(aec.cancel_echo(near.tolist(), far.tolist()), dtype=np.int16)

    return _by_10ms(call, step)


METHODS: dict[str, Callable[[Call], Output]] = {
    "none": run_none,
    "subtract": run_subtract,
    "numpy": run_numpy,
    "livekit": run_livekit,
    "webrtc": run_webrtc,
    "speex": run_speex,
}
LIBRARY_MODULES = {"livekit": "livekit.rtc", "webrtc": "pywebrtc_audio", "speex": "pyaec"}


def available(name: str) -> bool:
    module = LIBRARY_MODULES.get(name)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------- measures


def frame_db(x: Float, rate: int) -> Float:
    n = rate // 50
    usable = x[: x.size // n * n].reshape(-1, n) / 32768
    return 10 * np.log10(np.mean(usable**2, axis=1) + 1e-12)


def erle_db(call: Call, out: Int16) -> float:
    n = call.rate // 50
    echo_db = frame_db(call.echo, call.rate)
    frames = min(echo_db.size, out.size // n)
    active = np.flatnonzero(echo_db[:frames] > NOISE_DBFS + 10)
    mic = call.mic.astype(np.float64)[: frames * n].reshape(-1, n)[active]
    cleaned = out.astype(np.float64)[: frames * n].reshape(-1, n)[active]
    return float(10 * np.log10(np.sum(mic**2) / max(np.sum(cleaned**2), 1.0)))


def speech_onset(call: Call) -> int:
    """First 20 ms frame of the caller above -35 dBFS."""
    return int(np.argmax(frame_db(call.caller, call.rate) > -35))


def vad_starts(call: Call, out: Int16) -> list[float]:
    """Seconds at which Silero's ``speech_start`` fires on the cleaned audio."""
    audio = out.astype(np.float64) / 32768
    if call.rate != 16000:
        audio = signal.resample_poly(audio, 16000, call.rate)
    detector = VADDetector()
    fired: list[float] = []
    step = 320
    for start in range(0, audio.size, step):
        for event in detector.process(audio[start : start + step].astype(np.float32)):
            if event.kind == "speech_start":
                fired.append((start + step) / 16000)
    return fired


@dataclass
class Row:
    method: str
    rate: int
    path: str
    erle: list[float]
    flag_frames: int | None
    vad_false: int
    flag_delay: list[float]
    vad_delay: list[float]
    kept: list[float]
    us_per_frame: list[float]


def evaluate(method: str, calls: list[tuple[Call, Call]]) -> Row:
    first = calls[0][0]
    row = Row(method, first.rate, first.path, [], None, 0, [], [], [], [])
    run = METHODS[method]
    for echo_only, double_talk in calls:
        out = run(echo_only)
        frames = out.audio.size / (echo_only.rate // 50)
        row.us_per_frame.append(out.seconds / frames * 1e6)
        row.erle.append(erle_db(echo_only, out.audio))
        if out.flags is not None:
            row.flag_frames = (row.flag_frames or 0) + int(out.flags.sum())
        row.vad_false += len(vad_starts(echo_only, out.audio))
        out = run(double_talk)
        onset = speech_onset(double_talk)
        onset_s = onset / 50
        if out.flags is not None:
            clip_start = int(CALLER_AT_S * 50)
            after = np.flatnonzero(out.flags[clip_start:]) + clip_start
            row.flag_delay.append(max(0.0, (after[0] - onset) * 20.0) if after.size else np.inf)
        starts = [t for t in vad_starts(double_talk, out.audio) if t >= CALLER_AT_S]
        row.vad_delay.append((starts[0] - onset_s) * 1000 if starts else np.inf)
        caller_db = frame_db(double_talk.caller, double_talk.rate)
        speaking = np.flatnonzero(caller_db > -35)
        n = double_talk.rate // 50
        cleaned = out.audio.astype(np.float64)[: caller_db.size * n].reshape(-1, n)
        alone = double_talk.caller[: caller_db.size * n].reshape(-1, n)
        speaking = speaking[speaking < cleaned.shape[0]]
        row.kept.append(
            float(10 * np.log10(np.sum(cleaned[speaking] ** 2) / np.sum(alone[speaking] ** 2)))
        )
    return row


def fmt(values: list[float], digits: int = 0) -> str:
    finite = [v for v in values if np.isfinite(v)]
    missed = len(values) - len(finite)
    if not finite:
        return "missed" if values else "-"
    worst = max(finite) if digits == 0 else min(finite)
    text = f"{statistics.median(finite):.{digits}f} / {worst:.{digits}f}"
    return text + (f" ({missed} missed)" if missed else "")


def print_table(rows: list[Row]) -> None:
    header = (
        "| method | rate | path | ERLE dB (median / worst) | flag frames | VAD false starts "
        "| flag delay ms (median / max) | VAD delay ms (median / max) | kept dB (median / worst) "
        "| us/frame |"
    )
    print(header)
    print("|---" * 10 + "|")
    for r in rows:
        worst_erle = min(r.erle)
        flag = "-" if r.flag_frames is None else str(r.flag_frames)
        flag_delay = fmt(r.flag_delay) if r.flag_delay else "-"
        # `subtract` runs offline on the whole call with the true delay: no per-frame cost.
        cpu = "-" if r.method in {"none", "subtract"} else f"{statistics.mean(r.us_per_frame):.0f}"
        print(
            f"| {r.method} | {r.rate} | {r.path} | {statistics.median(r.erle):.1f} / "
            f"{worst_erle:.1f} | {flag} | {r.vad_false} | {flag_delay} | {fmt(r.vad_delay)} | "
            f"{statistics.median(r.kept):.1f} / {min(r.kept):.1f} | "
            f"{cpu} |"
        )


# ---------------------------------------------------------------------------- transcripts


def transcribe_all(methods: list[str], home: Path | None) -> None:
    from faster_whisper import WhisperModel  # noqa: PLC0415  # optional engine

    with tempfile.TemporaryDirectory(prefix="theo-echo-bench-") as workdir:
        if home is None and (TEST_CACHE / "downloads").is_dir():
            # As tests/helpers/server.py's pull: the suite's download cache, no hub.
            os.environ.setdefault("THEO_DOWNLOAD_CACHE_DIR", str(TEST_CACHE / "downloads"))
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        theo_home = home if home is not None else Path(workdir) / "home"
        theo_home.mkdir(parents=True, exist_ok=True)
        model_dir = ensure_model(theo_home, "faster-whisper-tiny.en", Path(workdir) / "pull.log")
        model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=2)
        transcribe_calls(model, methods)


def transcribe_calls(model: Any, methods: list[str]) -> None:
    caller_words = set(CALLER_TEXT.split())
    agent_words = set(AGENT_TEXT.split()) - caller_words - {"to", "a", "the", "be", "had"}
    print()
    print("| method | rate | caller words found | agent words leaked | transcript |")
    print("|---|---|---|---|---|")
    for rate in (16000, 8000):
        call = make_call(rate, "room", -10, 250, double_talk=True)
        for method in ["caller alone", *methods]:
            if method == "caller alone":
                audio = call.caller
            else:
                audio = METHODS[method](call).audio.astype(np.float64)
            audio16 = signal.resample_poly(audio, 16000, rate) if rate != 16000 else audio
            segments, _ = model.transcribe(
                (audio16 / 32768).astype(np.float32), language="en", beam_size=5
            )
            text = " ".join(s.text.strip() for s in segments)
            words = set(
                "".join(c if c.isalpha() or c == " " else " " for c in text.lower()).split()
            )
            found = len(caller_words & words)
            leaked = sorted(agent_words & words)
            print(
                f"| {method} | {rate} | {found}/{len(caller_words)} | "
                f"{len(leaked)} {' '.join(leaked)} | {text} |"
            )
            log(f"transcribed {method} at {rate} Hz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 kHz room path, 250 ms only")
    parser.add_argument("--transcribe", action="store_true", help="run faster-whisper tiny.en")
    parser.add_argument(
        "--theo-home",
        type=Path,
        default=None,
        help="THEO_HOME holding (or to pull) tiny.en; default: a temporary one, pulled "
        "from the test suite's download cache",
    )
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            parser.error(f"unknown method {m}")
    skipped = [m for m in methods if not available(m)]
    if skipped:
        log(f"not installed, skipped: {', '.join(skipped)}")
    methods = [m for m in methods if m not in skipped]
    rates = (16000,) if args.quick else (16000, 8000)
    paths = ("room",) if args.quick else ("room", "phone")
    delays = (250,) if args.quick else (100, 250, 450)
    rows: list[Row] = []
    for rate in rates:
        for path in paths:
            calls = [
                (
                    make_call(rate, path, atten, delay, double_talk=False),
                    make_call(rate, path, atten, delay, double_talk=True),
                )
                for atten in (-6, -10, -20)
                for delay in delays
            ]
            for method in methods:
                log(f"{method} at {rate} Hz, {path} path ({len(calls)} calls)")
                rows.append(evaluate(method, calls))
    print(
        f"Echo-only and double-talk calls: attenuation -6/-10/-20 dB x delay "
        f"{'/'.join(map(str, delays))} ms per row."
    )
    print()
    print_table(rows)
    if args.transcribe:
        transcribe_all(methods, args.theo_home.expanduser() if args.theo_home else None)


if __name__ == "__main__":
    main()
