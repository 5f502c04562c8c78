"""Decode any common container/codec to mono float32 at its native sample rate with PyAV.

Resampling to the engine's 16 kHz is a preprocessing stage (soxr), shared with the
streaming path. Runs synchronously; callers on the event loop use ``asyncio.to_thread``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

import av
import numpy as np
import numpy.typing as npt

from theo.errors import AudioFormatError

_SILENCE_PEAK = 10 ** (-70 / 20)  # -70 dBFS: below this there is no usable signal
_MIN_DURATION_S = 0.01


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    """Mono samples in [-1, 1] and their sample rate."""

    samples: npt.NDArray[np.float32]
    sample_rate: int

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.samples.size / self.sample_rate


def decode_audio(source: bytes | BinaryIO) -> DecodedAudio:
    """Decode the first audio stream to mono float32, keeping its sample rate.

    Raises:
        AudioFormatError: the data is not decodable audio, holds no audio stream, or is empty.
    """
    stream_source = io.BytesIO(source) if isinstance(source, bytes) else source
    chunks: list[npt.NDArray[np.float32]] = []
    try:
        with av.open(stream_source, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioFormatError("The file holds no audio stream.")
            stream = container.streams.audio[0]
            rate = int(stream.rate or stream.codec_context.sample_rate or 0)
            if rate <= 0:
                raise AudioFormatError("The audio stream has no sample rate.")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            for frame in container.decode(stream):
                chunks.extend(_to_array(out) for out in resampler.resample(frame))
            chunks.extend(_to_array(out) for out in resampler.resample(None))
    except AudioFormatError:
        raise
    except (av.error.FFmpegError, ValueError, IndexError, EOFError) as exc:
        raise AudioFormatError(
            "Could not decode the audio file: unsupported or corrupted data."
        ) from exc
    if not chunks:
        raise AudioFormatError("The audio file is empty: it decodes to no samples.")
    return DecodedAudio(np.concatenate(chunks), rate)


def _to_array(frame: av.AudioFrame) -> npt.NDArray[np.float32]:
    return np.ascontiguousarray(frame.to_ndarray().reshape(-1), dtype=np.float32)


def check_has_signal(audio: DecodedAudio) -> None:
    """Reject audio that is empty or digital silence, which can only yield hallucinations.

    Raises:
        AudioFormatError: less than 10 ms of audio, or a peak below -70 dBFS.
    """
    if audio.duration_s < _MIN_DURATION_S:
        raise AudioFormatError("The audio is empty: less than 10 ms of samples.")
    if float(np.max(np.abs(audio.samples))) < _SILENCE_PEAK:
        raise AudioFormatError("The audio holds only silence: no signal above -70 dBFS.")


def to_pcm16(samples: npt.NDArray[np.float32]) -> bytes:
    """Float samples in [-1, 1] to PCM16 little-endian bytes (clipped)."""
    scaled = np.clip(samples, -1.0, 1.0) * 32767.0
    return np.round(scaled).astype("<i2").tobytes()
