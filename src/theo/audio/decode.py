"""Decode any common container/codec to mono float32 at its native sample rate with PyAV.

Decoding is bounded and streaming: :class:`StreamingDecoder` demuxes packet by packet,
yields one mono float32 frame at a time and stops as soon as the audio is longer than
allowed or longer than its compressed size can honestly hold (a decompression bomb), so
no caller ever holds more than the accepted audio. Isolated corrupt packets are skipped.

Resampling to the engine's 16 kHz is a preprocessing stage (soxr), shared with the
streaming path. Runs synchronously; callers on the event loop use ``asyncio.to_thread``.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

import av
import numpy as np
import numpy.typing as npt

from theo.errors import AudioFormatError, AudioTooLongError
from theo.logging import get_logger

if TYPE_CHECKING:
    from theo.config import Settings

log = get_logger("audio.decode")

_SILENCE_PEAK = 10 ** (-70 / 20)  # -70 dBFS: below this there is no usable signal
_MIN_DURATION_S = 0.01
_UNDECODABLE = "Could not decode the audio file: unsupported or corrupted data."
# Errors PyAV raises for data it cannot parse; anything else is a bug and propagates.
_DECODE_ERRORS = (av.error.FFmpegError, ValueError, IndexError, EOFError)

MIN_BYTES_PER_SECOND = 50.0
"""Compression-bomb guard: no real codec packs a second of audio in fewer bytes.

The leanest speech codecs need about 88 B/s (Codec2 at 700 bit/s), Speex 2.15 kbit/s
about 270 B/s, AMR-NB 4.75 kbit/s about 600 B/s and Opus 6 kbit/s 750 B/s; a FLAC of
digital silence at 16 kHz with the usual 4096-sample blocks costs about 60 B/s. 50 B/s
stays under all of them, while the constant-block FLAC bombs this guards against hold
1 to 3 B/s."""

BOMB_FLOOR_S = 60.0
"""Audio any file may decode to whatever its size: 60 s of 16 kHz PCM16 is under 2 MB,
so tiny honest files (a few KB of Opus or Codec2) pass and the floor buys an attacker
nothing worth having."""

MAX_CORRUPT_FRACTION = 0.10
"""Share of packets that may fail to decode before the whole file is rejected: a few bad
bytes cost one packet each (tens of ms), while a file that is mostly unreadable is
garbage that would only yield hallucinations."""


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """What one decode may produce before it is stopped.

    The defaults guard against bombs, absurd sample rates and garbage but set no duration
    limit, which is a server policy: the server passes :meth:`from_settings`.

    Attributes:
        max_duration_s: Longest accepted audio in seconds (``THEO_MAX_AUDIO_DURATION_S``).
        min_sample_rate: Lowest sample rate a file may declare, in Hz.
        max_sample_rate: Highest sample rate a file may declare, in Hz.
        min_bytes_per_second: Compressed bytes each decoded second must be backed by.
        bomb_floor_s: Seconds any file may decode to regardless of its size.
        max_corrupt_fraction: Share of packets that may be skipped as corrupt.
    """

    max_duration_s: float = math.inf
    min_sample_rate: int = 8_000
    max_sample_rate: int = 192_000
    min_bytes_per_second: float = MIN_BYTES_PER_SECOND
    bomb_floor_s: float = BOMB_FLOOR_S
    max_corrupt_fraction: float = MAX_CORRUPT_FRACTION

    @classmethod
    def from_settings(cls, settings: Settings) -> DecodeLimits:
        """The limits the server's settings configure."""
        return cls(
            max_duration_s=settings.max_audio_duration_s,
            min_sample_rate=settings.min_sample_rate,
            max_sample_rate=settings.max_sample_rate,
        )

    def allowed_seconds(self, compressed_bytes: int) -> float:
        """Most audio, in seconds, that ``compressed_bytes`` of input may decode to."""
        return max(self.bomb_floor_s, compressed_bytes / self.min_bytes_per_second)


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    """Mono samples in [-1, 1] and their sample rate."""

    samples: npt.NDArray[np.float32]
    sample_rate: int

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.samples.size / self.sample_rate


class StreamingDecoder:
    """Decode the first audio stream frame by frame, within :class:`DecodeLimits`.

    Opening validates the container, the stream and its declared sample rate before any
    frame is decoded. :meth:`frames` then yields mono float32 frames at
    :attr:`sample_rate` and tracks the sample count and peak, so silence and emptiness are
    judged (:meth:`check_has_signal`) without keeping the audio. Use as a context manager.
    """

    def __init__(self, source: bytes | BinaryIO, limits: DecodeLimits | None = None) -> None:
        """Open ``source`` (the file's bytes, or a readable, seekable binary file).

        Raises:
            AudioFormatError: the data is empty or not a container with an audio stream,
                or its sample rate is missing or outside the accepted range.
        """
        self.limits = limits or DecodeLimits()
        handle = io.BytesIO(source) if isinstance(source, bytes) else source
        self.compressed_bytes = _remaining_bytes(handle)
        if self.compressed_bytes == 0:
            raise AudioFormatError("The audio file is empty: it holds no bytes.")
        self._allowed_s = self.limits.allowed_seconds(self.compressed_bytes)
        try:
            self._container = av.open(handle, mode="r", metadata_errors="ignore")
        except _DECODE_ERRORS as exc:
            raise AudioFormatError(_UNDECODABLE) from exc
        try:
            self._stream = self._audio_stream()
            self.sample_rate = self._checked_rate()
        except BaseException:
            self._container.close()
            raise
        self.samples = 0
        """Mono samples decoded so far, at :attr:`sample_rate`."""
        self.peak = 0.0
        """Largest absolute sample value decoded so far."""
        self.packets = 0
        """Packets with data read from the audio stream so far."""
        self.corrupt_packets = 0
        """Packets skipped because they failed to decode."""

    def __enter__(self) -> StreamingDecoder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the container and the codec."""
        self._container.close()

    @property
    def duration_s(self) -> float:
        """Seconds of audio decoded so far."""
        return self.samples / self.sample_rate

    def _audio_stream(self) -> av.AudioStream:
        if not self._container.streams.audio:
            raise AudioFormatError("The file holds no audio stream.")
        return self._container.streams.audio[0]

    def _checked_rate(self) -> int:
        rate = int(self._stream.rate or self._stream.codec_context.sample_rate or 0)
        if rate <= 0:
            raise AudioFormatError("The audio stream has no sample rate.")
        low, high = self.limits.min_sample_rate, self.limits.max_sample_rate
        if not low <= rate <= high:
            raise AudioFormatError(
                f"The audio declares a sample rate of {rate} Hz; accepted rates are "
                f"{low}-{high} Hz (THEO_MIN_SAMPLE_RATE, THEO_MAX_SAMPLE_RATE)."
            )
        return rate

    def frames(self) -> Iterator[npt.NDArray[np.float32]]:
        """Yield the audio as mono float32 frames in [-1, 1] at :attr:`sample_rate`.

        Packets that fail to decode are skipped and counted; the audio is rejected only
        when more than ``max_corrupt_fraction`` of them fail or none decodes.

        Raises:
            AudioTooLongError: the audio exceeds ``max_duration_s`` (raised as soon as it
                does, before the frame that crossed the limit is yielded).
            AudioFormatError: the audio decodes to more seconds than its compressed size
                can hold, too many packets are corrupt, the container is unreadable, or
                the file decodes to no samples.
        """
        # PyAV converts every frame to packed mono float at the native rate: only the
        # layout and sample format change here; 16 kHz is the preprocessing chain's job.
        resampler = av.AudioResampler(format="flt", layout="mono", rate=self.sample_rate)
        try:
            for packet in self._container.demux(self._stream):
                # The last packet is empty: decoding it flushes the codec's delayed frames.
                if packet.size:
                    self.packets += 1
                try:
                    decoded = packet.decode()
                except _DECODE_ERRORS:
                    # One bad packet costs its own few ms of audio, not the whole file.
                    self.corrupt_packets += 1
                    continue
                for frame in decoded:
                    for out in resampler.resample(frame):
                        yield self._accept(out)
            for out in resampler.resample(None):
                yield self._accept(out)
        except _DECODE_ERRORS as exc:
            raise AudioFormatError(_UNDECODABLE) from exc
        self._check_corruption()
        if self.samples == 0:
            raise AudioFormatError("The audio file is empty: it decodes to no samples.")

    def _accept(self, frame: av.AudioFrame) -> npt.NDArray[np.float32]:
        samples = np.ascontiguousarray(frame.to_ndarray().reshape(-1), dtype=np.float32)
        self.samples += samples.size
        seconds = self.duration_s
        # Checked before the frame is handed on, so nobody ever holds audio past a limit.
        if seconds > self.limits.max_duration_s:
            raise AudioTooLongError(
                f"The audio is longer than the maximum of {self.limits.max_duration_s:g} s "
                "allowed per request (THEO_MAX_AUDIO_DURATION_S)."
            )
        if seconds > self._allowed_s:
            raise AudioFormatError(
                f"The audio file decodes to more than {self._allowed_s:.0f} s of audio from "
                f"only {self.compressed_bytes} bytes (under "
                f"{self.limits.min_bytes_per_second:g} bytes per second, less than any real "
                "codec needs): rejected as a decompression bomb."
            )
        if samples.size:
            self.peak = max(self.peak, float(np.max(np.abs(samples))))
        return samples

    def _check_corruption(self) -> None:
        if not self.corrupt_packets:
            return
        if self.samples == 0 or (
            self.corrupt_packets > self.limits.max_corrupt_fraction * self.packets
        ):
            raise AudioFormatError(
                f"Could not decode the audio file: {self.corrupt_packets} of {self.packets} "
                f"packets are corrupted (at most {self.limits.max_corrupt_fraction:.0%} may "
                "be skipped)."
            )
        log.info(
            "audio_packets_skipped",
            skipped=self.corrupt_packets,
            packets=self.packets,
            decoded_s=round(self.duration_s, 2),
        )

    def check_has_signal(self) -> None:
        """Reject what :meth:`frames` produced if it was empty or digital silence.

        Raises:
            AudioFormatError: less than 10 ms of audio, or a peak below -70 dBFS.
        """
        _check_signal(self.duration_s, self.peak)


def _remaining_bytes(handle: BinaryIO) -> int:
    """Bytes from the current position to the end; the position is left unchanged."""
    start = handle.tell()
    handle.seek(0, os.SEEK_END)
    end = handle.tell()
    handle.seek(start)
    return end - start


def decode_audio(source: bytes | BinaryIO, limits: DecodeLimits | None = None) -> DecodedAudio:
    """Decode the first audio stream to mono float32, keeping its sample rate.

    The samples are appended to one buffer that grows in place, so the peak memory is
    about the float32 size of the audio, never a list of frames plus their concatenation.

    Raises:
        AudioFormatError: the data is not decodable audio, holds no audio stream, is empty,
            declares a sample rate outside the limits, or is a decompression bomb.
        AudioTooLongError: the audio exceeds ``limits.max_duration_s``.
    """
    buffer = bytearray()
    with StreamingDecoder(source, limits) as decoder:
        for frame in decoder.frames():
            buffer += frame.tobytes()
        rate = decoder.sample_rate
    # A view on the buffer, not a copy of it.
    return DecodedAudio(np.frombuffer(buffer, dtype=np.float32), rate)


def check_has_signal(audio: DecodedAudio) -> None:
    """Reject audio that is empty or digital silence, which can only yield hallucinations.

    Raises:
        AudioFormatError: less than 10 ms of audio, or a peak below -70 dBFS.
    """
    peak = float(np.max(np.abs(audio.samples))) if audio.samples.size else 0.0
    _check_signal(audio.duration_s, peak)


def _check_signal(duration_s: float, peak: float) -> None:
    if duration_s < _MIN_DURATION_S:
        raise AudioFormatError("The audio is empty: less than 10 ms of samples.")
    if peak < _SILENCE_PEAK:
        raise AudioFormatError("The audio holds only silence: no signal above -70 dBFS.")
