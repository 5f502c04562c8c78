"""The one PCM format inside Theo and its conversions.

Everything between decoding and the engines is 16 kHz mono: float32 samples in [-1, 1]
inside a process, PCM16 little-endian bytes on the wire between processes. Reading scales
by 1/32768 (every PCM16 value maps into [-1, 1)); writing is its exact inverse: it scales
by 32768, rounds to the nearest value and clips to the PCM16 range, so PCM16 that crosses a
process boundary as float and back is unchanged to the bit (an engine hears what the
client sent when no stage changes it) and a full-scale float (1.0) never overflows.
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
    """Float samples to PCM16 values: scaled by 32768, rounded, clipped to [-32768, 32767].

    The inverse of :func:`pcm16_to_float`: a PCM16 value read and written back is the same
    value (scaling by 32767 would move every sample above half scale by one step, which
    alone changed a word of the engine's transcript on a 3 s recording).
    """
    scaled = np.round(np.asarray(samples, dtype=np.float32) * np.float32(32768.0))
    return np.clip(scaled, -32768.0, 32767.0).astype("<i2")


def float_to_pcm16(samples: Samples) -> bytes:
    """Float samples to PCM16 little-endian bytes (see :func:`float_to_pcm16_array`)."""
    return float_to_pcm16_array(samples).tobytes()


def pcm16_duration_s(byte_count: int, sample_rate: int = ENGINE_SAMPLE_RATE) -> float:
    """Seconds of mono PCM16 audio in ``byte_count`` bytes at ``sample_rate``."""
    return byte_count / BYTES_PER_SAMPLE / sample_rate
