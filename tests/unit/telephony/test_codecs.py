"""Payload type to codec, and each codec's decoding to PCM16 little-endian."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from theo.audio.g711 import pcm16_to_alaw, pcm16_to_ulaw
from theo.telephony.codecs import PCMA, PCMU, RtpCodec, codec_for

SAMPLES = np.array([0, 1000, -1000, 32000, -32000, 5], dtype=np.int16)


def test_static_and_dynamic_payload_types() -> None:
    assert codec_for(0) == RtpCodec("pcmu", payload_type=0, clock_rate=8000, bytes_per_sample=1)
    assert codec_for(8) == RtpCodec("pcma", payload_type=8, clock_rate=8000, bytes_per_sample=1)
    assert codec_for(118) == RtpCodec("l16", payload_type=118, clock_rate=16000, bytes_per_sample=2)
    l16 = codec_for(96, l16_payload_type=96)
    assert l16 is not None
    assert (l16.name, l16.payload_type, l16.clock_rate) == ("l16", 96, 16000)
    assert codec_for(118, l16_payload_type=96) is None
    for unknown in (3, 9, 18, 101, 127):
        assert codec_for(unknown) is None


@pytest.mark.parametrize(("codec", "encode"), [(PCMU, pcm16_to_ulaw), (PCMA, pcm16_to_alaw)])
def test_g711_decodes_to_little_endian_pcm16(
    codec: RtpCodec, encode: Callable[[npt.NDArray[np.int16]], bytes]
) -> None:
    payload = encode(SAMPLES)
    pcm = codec.decode(payload)
    assert len(pcm) == 2 * len(SAMPLES)
    decoded = np.frombuffer(pcm, dtype="<i2")
    assert np.all(np.abs(decoded.astype(np.int32) - SAMPLES) <= 1024)
    assert decoded[0] in (0, 8, -8)  # G.711 has no exact zero in A-law


def test_l16_is_byteswapped_from_network_order() -> None:
    l16 = codec_for(118)
    assert l16 is not None
    assert l16.decode(SAMPLES.astype(">i2").tobytes()) == SAMPLES.astype("<i2").tobytes()


def test_l16_odd_length_drops_the_last_byte() -> None:
    l16 = codec_for(118)
    assert l16 is not None
    assert l16.decode(b"\x01\x02\x03") == b"\x02\x01"
    assert l16.decode(b"\x01") == b""


def test_silence_is_pcm16_zeros() -> None:
    assert PCMU.silence(160) == bytes(320)
    assert PCMU.silence(0) == b""
