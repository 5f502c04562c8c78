from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.audio import wav_bytes
from tests.helpers.server import FIXTURES
from theo.audio.decode import check_has_signal, decode_to_pcm16
from theo.errors import AudioFormatError


@pytest.mark.parametrize(
    ("name", "seconds"),
    [
        ("en_librivox.wav", 27.13),
        ("en_librivox_44k_stereo.mp3", 27.13),
        ("en_librivox_44k_stereo.ogg", 27.13),
        ("en_librivox.flac", 27.13),
        ("en_librivox.m4a", 27.13),
        ("en_librivox.webm", 27.13),
        ("en_librivox_8k.wav", 27.13),
    ],
)
def test_every_container_decodes_to_16k_mono(name: str, seconds: float) -> None:
    samples = decode_to_pcm16((FIXTURES / name).read_bytes())
    assert samples.dtype == np.int16
    assert samples.size / 16_000 == pytest.approx(seconds, abs=0.1)
    check_has_signal(samples)


def test_resampled_audio_matches_the_original() -> None:
    original = decode_to_pcm16((FIXTURES / "en_librivox.wav").read_bytes()).astype(np.float64)
    from_flac = decode_to_pcm16((FIXTURES / "en_librivox.flac").read_bytes()).astype(np.float64)
    n = min(original.size, from_flac.size)
    correlation = np.corrcoef(original[:n], from_flac[:n])[0, 1]
    assert correlation > 0.99


@pytest.mark.parametrize("data", [b"", b"not audio at all" * 100, b"RIFF\x00\x00"])
def test_undecodable_data(data: bytes) -> None:
    with pytest.raises(AudioFormatError):
        decode_to_pcm16(data)


def test_silence_and_empty_are_rejected() -> None:
    with pytest.raises(AudioFormatError, match="silence"):
        check_has_signal(np.zeros(16_000, dtype=np.int16))
    with pytest.raises(AudioFormatError, match="empty"):
        check_has_signal(np.ones(10, dtype=np.int16) * 1000)
    with pytest.raises(AudioFormatError):
        decode_to_pcm16(wav_bytes(np.zeros(0)))
