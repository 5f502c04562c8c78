"""Decode any common container/codec to 16 kHz mono PCM16 with PyAV.

Runs synchronously; callers on the event loop wrap it in ``asyncio.to_thread``.
"""

from __future__ import annotations

import io
from typing import BinaryIO

import av
import numpy as np
import numpy.typing as npt

from theo.errors import AudioFormatError

TARGET_SAMPLE_RATE = 16_000
_SILENCE_PEAK = 10 ** (-70 / 20)  # -70 dBFS: below this there is no usable signal


def decode_to_pcm16(source: bytes | BinaryIO) -> npt.NDArray[np.int16]:
    """Decode audio of any sample rate/channel count to 16 kHz mono int16 samples.

    Raises:
        AudioFormatError: the data is not decodable audio, or holds no audio stream.
    """
    stream_source = io.BytesIO(source) if isinstance(source, bytes) else source
    chunks: list[npt.NDArray[np.int16]] = []
    try:
        with av.open(stream_source, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioFormatError("The file holds no audio stream.")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=TARGET_SAMPLE_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
    except AudioFormatError:
        raise
    except (av.error.FFmpegError, ValueError, IndexError, EOFError) as exc:
        raise AudioFormatError(
            "Could not decode the audio file: unsupported or corrupted data."
        ) from exc
    if not chunks:
        raise AudioFormatError("The audio file is empty: it decodes to no samples.")
    return np.concatenate(chunks)


def check_has_signal(samples: npt.NDArray[np.int16]) -> None:
    """Reject audio that is empty or digital silence, which can only yield hallucinations.

    Raises:
        AudioFormatError: fewer than 10 ms of audio, or a peak below -70 dBFS.
    """
    if samples.size < TARGET_SAMPLE_RATE // 100:
        raise AudioFormatError("The audio is empty: less than 10 ms of samples.")
    peak = float(np.max(np.abs(samples.astype(np.int32)))) / 32768.0
    if peak < _SILENCE_PEAK:
        raise AudioFormatError("The audio holds only silence: no signal above -70 dBFS.")
