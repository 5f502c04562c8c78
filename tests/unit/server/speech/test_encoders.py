"""Streaming speech encoders: every format decodes (PyAV) to the audio that went in."""

from __future__ import annotations

import asyncio
import struct
import threading

import numpy as np
import pytest

from theo.audio.decode import decode_audio
from theo.server.speech.encoders import SpeechEncoder, SpeechFormat, WavEncoder, create_encoder
from theo.server.speech.relay import OffLoopEncoder

# Opus always decodes at 48 kHz; the other formats keep the model's rate.
_DECODED_RATE = {SpeechFormat.OPUS: 48_000}
_COMPRESSED = [SpeechFormat.MP3, SpeechFormat.OPUS, SpeechFormat.AAC, SpeechFormat.FLAC]


def _tone(seconds: float, rate: int) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 220 * t) * 12_000).astype("<i2").tobytes()


def _chunks(pcm: bytes, count: int) -> list[bytes]:
    step = len(pcm) // count // 2 * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


def _encode(encoder: SpeechEncoder, chunks: list[bytes]) -> list[bytes]:
    return [encoder.encode(chunk) for chunk in chunks] + [encoder.finish()]


@pytest.mark.parametrize("rate", [22_050, 24_000])
@pytest.mark.parametrize("fmt", [f for f in SpeechFormat if f is not SpeechFormat.PCM])
def test_every_format_decodes_to_the_duration_and_rate_encoded(
    fmt: SpeechFormat, rate: int
) -> None:
    parts = _encode(create_encoder(fmt, rate), _chunks(_tone(2.0, rate), 5))
    decoded = decode_audio(b"".join(parts))
    assert decoded.sample_rate == _DECODED_RATE.get(fmt, rate)
    # Lossy codecs add a few frames of priming and padding, never more.
    assert decoded.duration_s == pytest.approx(2.0, abs=0.1)
    assert np.abs(decoded.samples).max() > 0.2


@pytest.mark.parametrize("fmt", _COMPRESSED)
def test_compressed_formats_emit_audio_before_the_stream_ends(fmt: SpeechFormat) -> None:
    parts = _encode(create_encoder(fmt, 24_000), _chunks(_tone(3.0, 24_000), 6))
    # Every chunk after the first produces output at once: nothing waits for the end.
    assert all(parts[1:-1])
    assert sum(len(p) for p in parts[:-1]) > len(parts[-1])


def test_wav_header_declares_an_unknown_length_and_precedes_the_samples() -> None:
    pcm = _tone(0.5, 22_050)
    encoder = WavEncoder(22_050)
    first, second, tail = encoder.encode(pcm[:1000]), encoder.encode(pcm[1000:]), encoder.finish()
    assert first[:4] == b"RIFF" and first[8:16] == b"WAVEfmt "
    assert struct.unpack("<I", first[4:8])[0] == 0xFFFFFFFF
    assert struct.unpack("<I", first[40:44])[0] == 0xFFFFFFFF
    assert struct.unpack("<I", first[24:28])[0] == 22_050
    assert first[44:] == pcm[:1000]
    assert second == pcm[1000:]
    assert tail == b""


def test_wav_of_no_audio_is_still_a_header() -> None:
    assert WavEncoder(24_000).finish() == WavEncoder.header(24_000)


def test_pcm_at_24khz_is_the_samples_unchanged() -> None:
    pcm = _tone(0.2, 24_000)
    encoder = create_encoder(SpeechFormat.PCM, 24_000)
    assert encoder.encode(pcm) + encoder.finish() == pcm


def test_pcm_from_another_rate_is_resampled_to_24khz_in_any_chunking() -> None:
    pcm = _tone(1.0, 22_050)  # Piper's rate
    whole = create_encoder(SpeechFormat.PCM, 22_050)
    out = whole.encode(pcm) + whole.finish()
    assert len(out) // 2 == 24_000  # one second, at OpenAI's pcm rate
    spectrum = np.abs(np.fft.rfft(np.frombuffer(out, "<i2").astype(np.float64)))
    assert int(np.argmax(spectrum)) == 220  # the same pitch (1 Hz bins), not 8% higher
    pieces = create_encoder(SpeechFormat.PCM, 22_050)
    chunked = b"".join(pieces.encode(c) for c in _chunks(pcm, 7)) + pieces.finish()
    assert chunked == out


def test_empty_chunks_are_accepted() -> None:
    encoder = create_encoder(SpeechFormat.MP3, 22_050)
    assert encoder.encode(b"") == b""
    data = encoder.encode(_tone(1.0, 22_050)) + encoder.finish()
    assert decode_audio(data).duration_s == pytest.approx(1.0, abs=0.1)


class _SlowEncoder(SpeechEncoder):
    """Blocks in ``encode`` until released; records when it is closed."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.closed_while_encoding = False
        self.closed = threading.Event()
        self._encoding = False

    def encode(self, pcm16: bytes) -> bytes:
        self._encoding = True
        self.entered.set()
        self.release.wait(5)
        self._encoding = False
        return pcm16

    def finish(self) -> bytes:
        return b""

    def close(self) -> None:
        self.closed_while_encoding = self._encoding
        self.closed.set()


async def test_an_abandoned_encode_releases_the_encoder_only_after_the_call_returns() -> None:
    slow = _SlowEncoder()
    off_loop = OffLoopEncoder(slow)
    task = asyncio.create_task(off_loop.encode(b"\x00\x00"))
    await asyncio.to_thread(slow.entered.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    off_loop.close()
    assert not slow.closed.is_set()
    slow.release.set()
    assert await asyncio.to_thread(slow.closed.wait, 5)
    assert not slow.closed_while_encoding
