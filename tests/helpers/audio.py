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
