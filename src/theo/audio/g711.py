"""ITU-T G.711 mu-law (PCMU) and A-law (PCMA) codecs over lookup tables.

Both directions are a single table lookup: 256 entries to decode, 65536 (one per PCM16
value, indexed by its bit pattern as uint16) to encode. The tables are computed once at
import from the G.711 segment rules (the same quantisation as the Sun reference code that
``audioop`` used; ``audioop`` itself is gone from Python 3.13), so a 20 ms telephone packet
costs one vectorised gather.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["alaw_to_pcm16", "pcm16_to_alaw", "pcm16_to_ulaw", "ulaw_to_pcm16"]

_ULAW_BIAS: Final = 0x84
_ULAW_CLIP: Final = 8159  # largest magnitude in the 14-bit domain mu-law encodes
# Top of each segment's magnitude range: mu-law in the biased 14-bit domain, A-law in 13 bits.
_ULAW_SEGMENT_ENDS: Final = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEGMENT_ENDS: Final = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def _ulaw_decode_table() -> npt.NDArray[np.int16]:
    code = ~np.arange(256, dtype=np.int32) & 0xFF  # mu-law stores every bit inverted
    magnitude = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code >> 4) & 0x07)
    return np.where(code & 0x80, _ULAW_BIAS - magnitude, magnitude - _ULAW_BIAS).astype(np.int16)


def _alaw_decode_table() -> npt.NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32) ^ 0x55  # A-law inverts the even bits
    segment = (code >> 4) & 0x07
    magnitude = ((code & 0x0F) << 4) + np.where(segment == 0, 8, 0x108)
    magnitude = np.where(segment > 1, magnitude << np.maximum(segment - 1, 0), magnitude)
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


def _all_pcm16() -> npt.NDArray[np.int32]:
    """Every PCM16 value, in the order of its bit pattern read as uint16."""
    return np.arange(1 << 16, dtype=np.uint16).view(np.int16).astype(np.int32)


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = _all_pcm16() >> 2  # mu-law quantises 14 bits
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, magnitude)
    code = (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    # The clipped peak plus the bias lands past the last segment: the code is the maximum.
    code = np.where(segment > 7, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = _all_pcm16() >> 3  # A-law quantises 13 bits
    mask = np.where(pcm < 0, 0x55, 0xD5)
    magnitude = np.where(pcm < 0, -pcm - 1, pcm)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, magnitude)  # 13 bits never reach segment 8
    shift = np.maximum(segment, 1)
    code = (segment << 4) | ((magnitude >> shift) & 0x0F)
    return (code ^ mask).astype(np.uint8)


_ULAW_TO_PCM: Final = _ulaw_decode_table()
_ALAW_TO_PCM: Final = _alaw_decode_table()
_PCM_TO_ULAW: Final = _ulaw_encode_table()
_PCM_TO_ALAW: Final = _alaw_encode_table()


def ulaw_to_pcm16(data: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
    """Decode mu-law (PCMU) bytes, one sample per byte, to PCM16 values."""
    return _ULAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)]


def alaw_to_pcm16(data: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
    """Decode A-law (PCMA) bytes, one sample per byte, to PCM16 values."""
    return _ALAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)]


def pcm16_to_ulaw(samples: npt.NDArray[np.int16]) -> bytes:
    """Encode PCM16 values to mu-law (PCMU) bytes, one byte per sample."""
    return _PCM_TO_ULAW[_bit_patterns(samples)].tobytes()


def pcm16_to_alaw(samples: npt.NDArray[np.int16]) -> bytes:
    """Encode PCM16 values to A-law (PCMA) bytes, one byte per sample."""
    return _PCM_TO_ALAW[_bit_patterns(samples)].tobytes()


def _bit_patterns(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint16]:
    # astype first: a big-endian or non-contiguous input must be native before the view.
    return np.ascontiguousarray(samples, dtype=np.int16).view(np.uint16)
