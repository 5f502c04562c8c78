"""G.711 tables against the reference implementation Python shipped until 3.13 (audioop)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from theo.audio.g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop = pytest.importorskip("audioop")

ALL_CODES = bytes(range(256))
ALL_PCM16 = np.arange(-32768, 32768, dtype=np.int16)


def test_ulaw_decodes_every_code_like_audioop() -> None:
    decoded = ulaw_to_pcm16(ALL_CODES)
    assert decoded.dtype == np.int16
    assert decoded.astype("<i2").tobytes() == audioop.ulaw2lin(ALL_CODES, 2)


def test_alaw_decodes_every_code_like_audioop() -> None:
    decoded = alaw_to_pcm16(ALL_CODES)
    assert decoded.dtype == np.int16
    assert decoded.astype("<i2").tobytes() == audioop.alaw2lin(ALL_CODES, 2)


def test_ulaw_encodes_every_pcm16_value_like_audioop() -> None:
    assert pcm16_to_ulaw(ALL_PCM16) == audioop.lin2ulaw(ALL_PCM16.astype("<i2").tobytes(), 2)


def test_alaw_encodes_every_pcm16_value_like_audioop() -> None:
    assert pcm16_to_alaw(ALL_PCM16) == audioop.lin2alaw(ALL_PCM16.astype("<i2").tobytes(), 2)


def test_empty_input_gives_empty_output() -> None:
    empty = np.zeros(0, dtype=np.int16)
    assert ulaw_to_pcm16(b"").shape == (0,)
    assert alaw_to_pcm16(bytearray()).shape == (0,)
    assert pcm16_to_ulaw(empty) == b""
    assert pcm16_to_alaw(empty) == b""


def test_accepts_memoryview_and_big_endian_samples() -> None:
    codes = memoryview(b"\x00\x7f\x80\xff")
    assert ulaw_to_pcm16(codes).tolist() == ulaw_to_pcm16(bytes(codes)).tolist()
    samples = np.array([-1000, 0, 1000, 32767], dtype=np.int16)
    assert pcm16_to_ulaw(samples.astype(">i2")) == pcm16_to_ulaw(samples)
    assert pcm16_to_alaw(samples[::2]) == pcm16_to_alaw(samples[[0, 2]])


def test_round_trip_stays_within_one_quantisation_step() -> None:
    speech_range = np.arange(-8000, 8000, 7, dtype=np.int16)
    for encode, decode in ((pcm16_to_ulaw, ulaw_to_pcm16), (pcm16_to_alaw, alaw_to_pcm16)):
        back = decode(encode(speech_range)).astype(np.int32)
        error = np.abs(back - speech_range)
        # Segment steps double with magnitude; a decoded value sits mid-step.
        assert np.all(error <= np.maximum(np.abs(speech_range) // 16, 16))
