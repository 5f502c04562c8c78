"""Make ``tests/fixtures/audio/en_phone_dictation_8k.wav`` (+ ``.txt``): a caller reading a
phone number in groups, as an 8 kHz call carries it; with ``--wideband``,
``en_phone_dictation.wav`` (+ ``.txt``): the same groups at 24 kHz, without the call's
trailing second of silence, as a browser sends them.

Piper's ``joe`` voice (``piper-en-us-joe-medium``) speaks each group alone through
``POST /v1/audio/speech`` (24 kHz PCM16); each group is trimmed to its first and last
sample over 0.01 of full scale, resampled to 8 kHz with soxr and followed by 650 ms of
digital silence, and 1 s of silence ends the clip. Speech starts at the first sample, as
when a call is answered mid-word.

Piper samples noise as it speaks, so every run gives a different rendering. The committed
one is the 8th of 48 made this way, kept because Silero doubts its opening: at 8 kHz it
scores "My phone" 0.2-0.58, and the VAD used to confirm speech only at 448 ms, so the call's
final lost its first two words and the number was left unformatted. The committed wideband
one is a single draw, committed so that the dictation test hears the same audio on every
run (a fresh rendering per run once made base hear "My full number"). Run from the
repository root::

    .venv/bin/python scripts/make_phone_call_clip.py --theo-home ~/.theo --out /tmp/clips
    .venv/bin/python scripts/make_phone_call_clip.py --wideband --theo-home ~/.theo
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np
import soxr  # type: ignore[import-untyped]  # soxr ships no type information

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from make_dictation_clips import trim, write_wav  # type: ignore[import-not-found]

from tests.helpers.server import REPO_ROOT, pull, serving

NAME = "en_phone_dictation_8k"
WIDEBAND_NAME = "en_phone_dictation"
MODEL = "piper-en-us-joe-medium"
GROUPS = ("My phone number is five five five", "one two three", "four five six seven")
PCM_RATE = 24_000
OUT_RATE = 8_000
LOUD = 327  # |sample| over 0.01 of full scale
PAUSE_S = 0.65
END_SILENCE_S = 1.0


def render(client: httpx.Client, *, wideband: bool) -> np.ndarray:
    """The groups spoken, trimmed and joined: 8 kHz PCM16 samples ending in silence, or
    (``wideband``) 24 kHz ones ending with the last word."""
    rate = PCM_RATE if wideband else OUT_RATE
    pause = np.zeros(round(rate * PAUSE_S), np.float32)
    parts = []
    for text in GROUPS:
        response = client.post(
            "/v1/audio/speech",
            json={"model": MODEL, "voice": "joe", "input": text, "response_format": "pcm"},
        )
        response.raise_for_status()
        speech = trim(np.frombuffer(response.content, dtype="<i2"), LOUD)
        parts.append(soxr.resample(speech.astype(np.float32) / 32768, PCM_RATE, rate))
        parts.append(pause)
    if wideband:
        parts.pop()  # pauses between the groups only
    else:
        parts.append(np.zeros(round(OUT_RATE * END_SILENCE_S), np.float32))
    return (np.clip(np.concatenate(parts), -1, 1) * 32767).astype(np.int16)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "tests" / "fixtures" / "audio")
    parser.add_argument("--theo-home", type=Path, default=None, help="default: a temporary one")
    parser.add_argument("--wideband", action="store_true", help="24 kHz, for the dictation test")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="theo-phone-clip-"))
    try:
        home = args.theo_home.expanduser().resolve() if args.theo_home else workdir / "home"
        if not (home / "models" / MODEL / "theo.yaml").exists():
            result = pull(home, MODEL)
            if result.returncode != 0:
                raise RuntimeError(f"theo pull {MODEL} failed:\n{result.stderr}")
        with (
            serving(home, workdir / "theo.log") as server,
            httpx.Client(base_url=server.base_url, timeout=300.0) as client,
        ):
            samples = render(client, wideband=args.wideband)
        rate = PCM_RATE if args.wideband else OUT_RATE
        args.out.mkdir(parents=True, exist_ok=True)
        wav = args.out / f"{WIDEBAND_NAME if args.wideband else NAME}.wav"
        write_wav(wav, samples, rate)
        wav.with_suffix(".txt").write_text(", ".join(GROUPS) + ".\n", encoding="utf-8")
        print(f"{wav}: {samples.size / rate:.2f} s", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
