"""Streaming audio encoders for ``/v1/audio/speech``: PCM16 chunks in, encoded bytes out.

Every encoder emits bytes as soon as it has them, so a response can stream while the
worker is still synthesizing. ``wav`` is sent with an unknown-length header (its RIFF and
data sizes are 0xFFFFFFFF, as in other streaming TTS servers): decoders read to the end
of the stream. ``pcm`` is raw 16-bit little-endian mono at 24 kHz, as OpenAI defines it.
Compressed formats use PyAV; FLAC streams carry no total length or MD5 in their header.
Encoding is CPU work: callers on the event loop run it in a thread.
"""

from __future__ import annotations

import enum
import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import av
import numpy as np
from av.audio.stream import AudioStream

from theo.audio.pcm import float_to_pcm16, pcm16_to_float
from theo.preprocessing.resample import Resample


class SpeechFormat(enum.StrEnum):
    """Audio formats of the OpenAI speech contract."""

    MP3 = "mp3"
    OPUS = "opus"
    AAC = "aac"
    FLAC = "flac"
    WAV = "wav"
    PCM = "pcm"


MEDIA_TYPES = {
    SpeechFormat.MP3: "audio/mpeg",
    SpeechFormat.OPUS: "audio/ogg",
    SpeechFormat.AAC: "audio/aac",
    SpeechFormat.FLAC: "audio/flac",
    SpeechFormat.WAV: "audio/wav",
    SpeechFormat.PCM: "audio/pcm",
}


class SpeechEncoder(ABC):
    """Turns consecutive PCM16 chunks into one encoded stream."""

    inline: ClassVar[bool] = False
    """Whether encoding is so cheap (a copy) that it may run on the event loop."""

    @abstractmethod
    def encode(self, pcm16: bytes) -> bytes:
        """Encode the next chunk; returns whatever encoded bytes are ready (maybe none)."""

    @abstractmethod
    def finish(self) -> bytes:
        """Flush the encoder and return the last bytes of the stream."""

    def close(self) -> None:  # noqa: B027 - optional hook: only some encoders hold resources
        """Release resources without finishing (the response was abandoned)."""


PCM_SAMPLE_RATE = 24_000
"""The rate of ``response_format=pcm``: OpenAI defines it as 24 kHz PCM16, and its
clients play it at that rate whatever the model's own."""


class PcmEncoder(SpeechEncoder):
    """Raw PCM16 LE mono at 24 kHz (OpenAI's ``pcm``), resampled with soxr from the
    model's rate; filter state is carried across chunks, so chunking changes nothing."""

    inline = True

    def __init__(self, sample_rate: int) -> None:
        self._resample = (
            Resample(sample_rate, PCM_SAMPLE_RATE) if sample_rate != PCM_SAMPLE_RATE else None
        )

    def encode(self, pcm16: bytes) -> bytes:
        """The chunk at 24 kHz (may be shorter while the resampler fills)."""
        if self._resample is None:
            return pcm16
        return float_to_pcm16(self._resample.process(pcm16_to_float(pcm16)))

    def finish(self) -> bytes:
        """What the resampler still holds."""
        if self._resample is None:
            return b""
        return float_to_pcm16(self._resample.flush())


class WavEncoder(SpeechEncoder):
    """PCM16 in a RIFF/WAVE container whose header declares an unknown length."""

    inline = True
    _UNKNOWN = 0xFFFFFFFF

    def __init__(self, sample_rate: int) -> None:
        self._header: bytes | None = self.header(sample_rate)

    @classmethod
    def header(cls, sample_rate: int) -> bytes:
        """A 44-byte mono 16-bit WAV header with unknown RIFF and data sizes."""
        fmt = struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        return (
            b"RIFF"
            + struct.pack("<I", cls._UNKNOWN)
            + b"WAVE"
            + b"fmt "
            + fmt
            + b"data"
            + struct.pack("<I", cls._UNKNOWN)
        )

    def encode(self, pcm16: bytes) -> bytes:
        """The header before the first chunk, then the samples."""
        header, self._header = self._header, None
        return (header or b"") + pcm16

    def finish(self) -> bytes:
        """The header, if no chunk was ever encoded."""
        header, self._header = self._header, None
        return header or b""


class _Sink:
    """A write-only file object collecting what the muxer writes (not seekable on purpose)."""

    def __init__(self) -> None:
        self._data = bytearray()

    def write(self, data: bytes) -> int:
        self._data.extend(data)
        return len(data)

    def take(self) -> bytes:
        data = bytes(self._data)
        self._data.clear()
        return data


@dataclass(frozen=True, slots=True)
class _Codec:
    container: str
    codec: str
    bit_rate: int | None
    rates: tuple[int, ...] = ()
    """Sample rates the codec accepts; others are resampled to the nearest higher one."""
    options: tuple[tuple[str, str], ...] = ()


_CODECS = {
    SpeechFormat.MP3: _Codec("mp3", "libmp3lame", 64_000),
    # Ogg pages are flushed every 100 ms instead of every second, for streaming.
    SpeechFormat.OPUS: _Codec(
        "ogg",
        "libopus",
        32_000,
        (8_000, 12_000, 16_000, 24_000, 48_000),
        (("page_duration", "100000"),),
    ),
    SpeechFormat.AAC: _Codec("adts", "aac", 64_000),
    SpeechFormat.FLAC: _Codec("flac", "flac", None),
}


class AvEncoder(SpeechEncoder):
    """A PyAV encoder and muxer writing into memory, drained after every chunk."""

    def __init__(self, fmt: SpeechFormat, sample_rate: int) -> None:
        spec = _CODECS[fmt]
        self._sample_rate = sample_rate
        out_rate = sample_rate
        if spec.rates and sample_rate not in spec.rates:
            out_rate = min((r for r in spec.rates if r >= sample_rate), default=spec.rates[-1])
        self._sink = _Sink()
        self._container = av.open(
            self._sink, mode="w", format=spec.container, options=dict(spec.options)
        )
        stream = self._container.add_stream(spec.codec, rate=out_rate, layout="mono")
        if not isinstance(stream, AudioStream):
            raise TypeError(f"{spec.codec} is not an audio codec")
        if spec.bit_rate:
            stream.bit_rate = spec.bit_rate
        self._stream = stream
        self._closed = False

    def _mux(self, frame: av.AudioFrame | None) -> bytes:
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        return self._sink.take()

    def encode(self, pcm16: bytes) -> bytes:
        """Encode a chunk; the codec's own frame size is handled by PyAV."""
        samples = np.frombuffer(pcm16, dtype="<i2").reshape(1, -1)
        if not samples.size:
            return b""
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self._sample_rate
        return self._mux(frame)

    def finish(self) -> bytes:
        """Flush the codec and write the container trailer."""
        data = self._mux(None)
        self._container.close()
        self._closed = True
        return data + self._sink.take()

    def close(self) -> None:
        """Close the container if the stream was not finished."""
        if not self._closed:
            self._closed = True
            self._container.close()


def create_encoder(fmt: SpeechFormat, sample_rate: int) -> SpeechEncoder:
    """A fresh encoder for one response in ``fmt`` from PCM16 at ``sample_rate``."""
    if fmt is SpeechFormat.PCM:
        return PcmEncoder(sample_rate)
    if fmt is SpeechFormat.WAV:
        return WavEncoder(sample_rate)
    return AvEncoder(fmt, sample_rate)
