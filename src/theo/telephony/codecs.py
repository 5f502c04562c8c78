"""RTP payload types Theo accepts and their decoding to PCM16.

Static types come from RFC 3551 (0 PCMU and 8 PCMA, both 8 kHz). Wideband linear audio
arrives on a dynamic type: Asterisk's ExternalMedia sends ``slin16`` as L16 at 16 kHz on
payload type 118 unless told otherwise, so that is the default number here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from theo.audio.g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16

__all__ = ["DEFAULT_L16_PAYLOAD_TYPE", "PCMA", "PCMU", "RtpCodec", "codec_for"]

DEFAULT_L16_PAYLOAD_TYPE: Final = 118
"""Asterisk ExternalMedia's default dynamic payload type for ``slin16``."""

CodecName = Literal["pcmu", "pcma", "l16"]


@dataclass(frozen=True, slots=True)
class RtpCodec:
    """An audio payload format: what its bytes are and how fast its clock runs.

    Attributes:
        name: ``pcmu``, ``pcma`` or ``l16``.
        payload_type: The RTP payload type it arrives on.
        clock_rate: Samples per second (mono), also the RTP timestamp rate.
        bytes_per_sample: Payload bytes per sample (1 for G.711, 2 for L16).
    """

    name: CodecName
    payload_type: int
    clock_rate: int
    bytes_per_sample: int

    def decode(self, payload: bytes) -> bytes:
        """Decode a payload to PCM16 little-endian mono bytes at :attr:`clock_rate`.

        An L16 payload of odd length drops its last, incomplete byte.
        """
        if self.name == "pcmu":
            return ulaw_to_pcm16(payload).astype("<i2", copy=False).tobytes()
        if self.name == "pcma":
            return alaw_to_pcm16(payload).astype("<i2", copy=False).tobytes()
        # RFC 3551 section 4.5.11: L16 travels in network byte order.
        whole = len(payload) - len(payload) % 2
        return np.frombuffer(payload, dtype=">i2", count=whole // 2).astype("<i2").tobytes()

    def encode(self, pcm16: bytes) -> bytes:
        """Encode PCM16 little-endian mono bytes at :attr:`clock_rate` as a payload."""
        samples = np.frombuffer(pcm16, dtype="<i2", count=len(pcm16) // 2)
        if self.name == "pcmu":
            return pcm16_to_ulaw(samples)
        if self.name == "pcma":
            return pcm16_to_alaw(samples)
        return samples.astype(">i2").tobytes()

    def silence(self, samples: int) -> bytes:
        """PCM16 little-endian silence, ``samples`` long."""
        return bytes(2 * samples)


PCMU: Final = RtpCodec("pcmu", payload_type=0, clock_rate=8000, bytes_per_sample=1)
PCMA: Final = RtpCodec("pcma", payload_type=8, clock_rate=8000, bytes_per_sample=1)


def codec_for(
    payload_type: int, *, l16_payload_type: int = DEFAULT_L16_PAYLOAD_TYPE
) -> RtpCodec | None:
    """The codec for a payload type, or None if Theo does not accept it.

    Args:
        payload_type: The payload type of a received packet.
        l16_payload_type: The dynamic payload type negotiated for L16 at 16 kHz.
    """
    if payload_type == PCMU.payload_type:
        return PCMU
    if payload_type == PCMA.payload_type:
        return PCMA
    if payload_type == l16_payload_type:
        return RtpCodec("l16", payload_type=payload_type, clock_rate=16000, bytes_per_sample=2)
    return None
