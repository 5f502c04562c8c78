"""The encoding and rate of the audio a session is pushed, and its decoding to samples.

Linear PCM16 (little-endian, mono) at 8-48 kHz, or G.711 mu-law / A-law at 8 kHz (one
byte per sample, decoded by table), the telephone codecs a browser gateway or a PBX sends
as they are. The rest of the session sees only float samples at the input rate.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from theo.audio.g711 import alaw_to_pcm16, ulaw_to_pcm16
from theo.audio.pcm import pcm16_to_float
from theo.errors import InvalidRequestError
from theo.session.segmenter import Samples


class AudioEncoding(enum.StrEnum):
    """How the bytes pushed into a session encode samples."""

    PCM16 = "pcm16"
    """16-bit signed little-endian linear PCM."""
    G711_ULAW = "g711_ulaw"
    """G.711 mu-law, one byte per sample."""
    G711_ALAW = "g711_alaw"
    """G.711 A-law, one byte per sample."""


_BYTES_PER_SAMPLE = {
    AudioEncoding.PCM16: 2,
    AudioEncoding.G711_ULAW: 1,
    AudioEncoding.G711_ALAW: 1,
}
_PCM16_SCALE = np.float32(1 / 32768.0)


@dataclass(frozen=True, slots=True)
class InputFormat:
    """The session's input audio: encoding and sample rate (mono)."""

    encoding: AudioEncoding
    sample_rate: int

    @property
    def bytes_per_sample(self) -> int:
        """Bytes of one sample in this encoding."""
        return _BYTES_PER_SAMPLE[self.encoding]

    def check(self, frame: bytes) -> None:
        """Refuse a frame that does not hold whole samples.

        Raises:
            InvalidRequestError: a partial sample (param ``audio``).
        """
        if len(frame) % self.bytes_per_sample:
            raise InvalidRequestError(
                "Audio frames must be 16-bit PCM: the frame has an odd number of bytes.",
                param="audio",
            )

    def duration_s(self, frame: bytes) -> float:
        """Seconds of audio in ``frame``."""
        return len(frame) / self.bytes_per_sample / self.sample_rate

    def decode(self, frame: bytes) -> Samples:
        """Float samples in [-1, 1] at ``sample_rate``."""
        if self.encoding is AudioEncoding.G711_ULAW:
            return ulaw_to_pcm16(frame).astype(np.float32) * _PCM16_SCALE
        if self.encoding is AudioEncoding.G711_ALAW:
            return alaw_to_pcm16(frame).astype(np.float32) * _PCM16_SCALE
        return pcm16_to_float(frame)
