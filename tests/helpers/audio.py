"""Build test audio in memory from the committed fixtures."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        frames = wav.readframes(wav.getnframes())
        return np.frombuffer(frames, dtype=np.int16), wav.getframerate()


def wav_bytes(samples: np.ndarray, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype(np.int16).tobytes())
    return buffer.getvalue()


def repeated_clip(path: Path, min_seconds: float) -> bytes:
    """The clip repeated (with 0.5 s gaps) until it lasts at least ``min_seconds``."""
    samples, rate = read_wav(path)
    gap = np.zeros(rate // 2, dtype=np.int16)
    parts: list[np.ndarray] = []
    total = 0
    while total < min_seconds * rate:
        parts += [samples, gap]
        total += samples.size + gap.size
    return wav_bytes(np.concatenate(parts), rate)


def _trimmed(clip: np.ndarray, frame: int) -> np.ndarray:
    """``clip`` from its first to its last 20 ms frame louder than -38 dBFS."""
    usable = clip[: clip.size // frame * frame] / 32768.0
    loud = np.flatnonzero(np.sqrt(np.mean(usable.reshape(-1, frame) ** 2, axis=1)) >= 0.012)
    return clip[loud[0] * frame : (loud[-1] + 1) * frame]


def continuous_speech(path: Path) -> bytes:
    """PCM16 of ``path``'s utterances without their pauses, twice: for en_librivox.wav,
    ~44 s that a VAD hears as one segment."""
    samples, rate = read_wav(path)
    # The utterances are separated by 0.6 s of digital silence (runs of exact zeros).
    silent = np.concatenate([[False], samples == 0, [False]])
    edges = np.flatnonzero(np.diff(silent.astype(np.int8)))
    runs = [(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= rate // 2]
    bounds = [0, *[i for run in runs for i in run], samples.size]
    clips = [samples[a:b] for a, b in zip(bounds[::2], bounds[1::2], strict=True)]
    speech = np.concatenate([_trimmed(clip, rate // 50) for clip in clips])
    return np.concatenate([speech, speech]).astype("<i2").tobytes()
