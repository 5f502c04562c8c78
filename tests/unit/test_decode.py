from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.audio import wav_bytes
from tests.helpers.server import FIXTURES
from theo.audio.decode import DecodedAudio, check_has_signal, decode_audio, to_pcm16
from theo.errors import AudioFormatError


@pytest.mark.parametrize(
    ("name", "rate"),
    [
        ("en_librivox.wav", 16_000),
        ("en_librivox_44k_stereo.mp3", 44_100),
        ("en_librivox_44k_stereo.ogg", 48_000),
        ("en_librivox.flac", 16_000),
        ("en_librivox.m4a", 44_100),
        ("en_librivox.webm", 48_000),
        ("en_librivox_8k.wav", 8_000),
    ],
)
def test_every_container_decodes_to_mono_at_its_rate(name: str, rate: int) -> None:
    audio = decode_audio((FIXTURES / name).read_bytes())
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.sample_rate == rate
    assert audio.duration_s == pytest.approx(27.13, abs=0.1)
    assert 0.3 < float(np.max(np.abs(audio.samples))) <= 1.0
    check_has_signal(audio)


def test_flac_is_lossless() -> None:
    wav = decode_audio((FIXTURES / "en_librivox.wav").read_bytes())
    flac = decode_audio((FIXTURES / "en_librivox.flac").read_bytes())
    np.testing.assert_array_equal(wav.samples, flac.samples)


@pytest.mark.parametrize("data", [b"", b"not audio at all" * 100, b"RIFF\x00\x00"])
def test_undecodable_data(data: bytes) -> None:
    with pytest.raises(AudioFormatError):
        decode_audio(data)


def test_silence_and_empty_are_rejected() -> None:
    with pytest.raises(AudioFormatError, match="silence"):
        check_has_signal(DecodedAudio(np.zeros(16_000, dtype=np.float32), 16_000))
    with pytest.raises(AudioFormatError, match="empty"):
        check_has_signal(DecodedAudio(np.full(10, 0.5, dtype=np.float32), 16_000))
    with pytest.raises(AudioFormatError):
        decode_audio(wav_bytes(np.zeros(0)))


def test_pcm16_conversion_clips_and_rounds() -> None:
    pcm = np.frombuffer(to_pcm16(np.array([0.0, 0.5, -1.0, 2.0], dtype=np.float32)), "<i2")
    assert pcm.tolist() == [0, 16384, -32767, 32767]
