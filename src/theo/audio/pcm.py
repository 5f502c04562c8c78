"""The one PCM format inside Theo and its conversions.

Everything between decoding and the engines is 16 kHz mono: float32 samples in [-1, 1]
inside a process, PCM16 little-endian bytes on the wire between processes. Reading scales
by 1/32768 (every PCM16 value maps into [-1, 1)); writing clips, scales by 32767 and
rounds to the nearest value, so a round trip never overflows.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from theo.types import ENGINE_SAMPLE_RATE

__all__ = [
    "BYTES_PER_SAMPLE",
    "ENGINE_SAMPLE_RATE",
    "Samples",
    "float_to_pcm16",
    "float_to_pcm16_array",
    "pcm16_duration_s",
    "pcm16_to_float",
]

BYTES_PER_SAMPLE: Final = 2
"""PCM16: two bytes per mono sample."""

Samples = npt.NDArray[np.float32]
"""Mono float32 audio in [-1, 1]."""


def pcm16_to_float(pcm16: bytes | bytearray | memoryview) -> Samples:
    """PCM16 little-endian bytes (an even count) to float samples in [-1, 1)."""
    return np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16_array(samples: Samples) -> npt.NDArray[np.int16]:
    """Float samples to PCM16 values: clipped to [-1, 1], scaled and rounded."""
    return np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")


def float_to_pcm16(samples: Samples) -> bytes:
    """Float samples to PCM16 little-endian bytes (see :func:`float_to_pcm16_array`)."""
    return float_to_pcm16_array(samples).tobytes()


def pcm16_duration_s(byte_count: int, sample_rate: int = ENGINE_SAMPLE_RATE) -> float:
    """Seconds of mono PCM16 audio in ``byte_count`` bytes at ``sample_rate``."""
    return byte_count / BYTES_PER_SAMPLE / sample_rate
