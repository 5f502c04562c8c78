"""RTP (RFC 3550) packets: parse what arrives on the media port, build packets for tests.

Every length in a datagram comes from the network, so each is checked against the bytes
actually received before it is used; anything inconsistent raises
:class:`MalformedPacketError` with a short ``reason`` that the transport counts in a metric.
RTCP multiplexed onto the RTP port (RFC 5761) is told apart by :func:`is_rtcp`; of RTCP we
only read BYE, which ends a call early.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "RTCP_BYE",
    "RTP_HEADER_BYTES",
    "RTP_VERSION",
    "MalformedPacketError",
    "RtpPacket",
    "build_rtcp_bye",
    "build_rtp",
    "is_rtcp",
    "parse_rtp",
    "rtcp_bye_ssrcs",
]

RTP_HEADER_BYTES: Final = 12
"""The fixed header, before any CSRC list or extension."""

RTP_VERSION: Final = 2
RTCP_BYE: Final = 203

_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")
_RTCP_HEADER = struct.Struct("!BBH")
_EXTENSION_PROFILE: Final = 0xBEDE  # RFC 8285 one-byte header extensions: the common one
_MAX_CSRCS: Final = 15
_MAX_RTCP_COUNT: Final = 31
# RFC 5761 section 4: RTCP packet types 192-223 never collide with RTP payload types in use.
_RTCP_TYPES: Final = range(192, 224)


class MalformedPacketError(ValueError):
    """A datagram that is not a well-formed RTP or RTCP packet.

    Attributes:
        reason: A short snake_case label (``too_short``, ``bad_version``, ...) for metrics.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """The fields of an RTP packet that a receiver acts on.

    Attributes:
        payload_type: The 7-bit payload type (0 PCMU, 8 PCMA, dynamic 96-127).
        sequence: The 16-bit sequence number, as sent (it wraps).
        timestamp: The 32-bit media timestamp in clock-rate units, as sent (it wraps).
        ssrc: The synchronisation source identifier.
        marker: The marker bit (first packet of a talkspurt for audio).
        payload: The payload, without CSRCs, header extension or padding.
    """

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes


def parse_rtp(datagram: bytes) -> RtpPacket:
    """Parse one RTP datagram.

    Raises:
        MalformedPacketError: The datagram is shorter than its header claims, is not
            version 2, has inconsistent padding, or carries no payload.
    """
    if len(datagram) < RTP_HEADER_BYTES:
        raise MalformedPacketError("too_short", f"{len(datagram)} bytes")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(datagram)
    if first >> 6 != RTP_VERSION:
        raise MalformedPacketError("bad_version", f"version {first >> 6}")
    start = RTP_HEADER_BYTES + 4 * (first & 0x0F)
    if start > len(datagram):
        raise MalformedPacketError("csrc_past_end", f"{first & 0x0F} CSRCs")
    if first & 0x10:
        if start + _EXTENSION_HEADER.size > len(datagram):
            raise MalformedPacketError("extension_past_end", "no room for its header")
        _profile, words = _EXTENSION_HEADER.unpack_from(datagram, start)
        start += _EXTENSION_HEADER.size + 4 * words
        if start > len(datagram):
            raise MalformedPacketError("extension_past_end", f"{words} words")
    end = len(datagram)
    if first & 0x20:
        padding = datagram[-1]
        if padding == 0 or padding > end - start:
            raise MalformedPacketError("bad_padding", f"{padding} of {end - start} bytes")
        end -= padding
    if end == start:
        raise MalformedPacketError("empty_payload")
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        marker=bool(second & 0x80),
        payload=bytes(datagram[start:end]),
    )


def is_rtcp(datagram: bytes) -> bool:
    """Whether a datagram on the RTP port is RTCP (RFC 5761 section 4 demultiplexing)."""
    return len(datagram) >= 2 and datagram[0] >> 6 == RTP_VERSION and datagram[1] in _RTCP_TYPES


def rtcp_bye_ssrcs(datagram: bytes) -> list[int]:
    """The SSRCs that a (compound) RTCP datagram says goodbye for.

    Walks every sub-packet by its length field; only BYE (PT 203) contributes.

    Raises:
        MalformedPacketError: A sub-packet is not version 2 or runs past the datagram.
    """
    ssrcs: list[int] = []
    offset = 0
    if not datagram:
        raise MalformedPacketError("too_short", "empty datagram")
    while offset < len(datagram):
        if offset + _RTCP_HEADER.size > len(datagram):
            raise MalformedPacketError("too_short", f"{len(datagram) - offset} trailing bytes")
        first, packet_type, words = _RTCP_HEADER.unpack_from(datagram, offset)
        if first >> 6 != RTP_VERSION:
            raise MalformedPacketError("bad_version", f"version {first >> 6}")
        end = offset + 4 * (words + 1)  # the length counts 32-bit words minus one
        if end > len(datagram):
            raise MalformedPacketError("length_past_end", f"{words + 1} words")
        if packet_type == RTCP_BYE:
            count = first & 0x1F
            if offset + 4 + 4 * count > end:
                raise MalformedPacketError("bye_past_end", f"{count} SSRCs")
            ssrcs.extend(struct.unpack_from(f"!{count}I", datagram, offset + 4))
        offset = end
    return ssrcs


def build_rtp(
    *,
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    marker: bool = False,
    csrcs: Sequence[int] = (),
    extension: bytes | None = None,
    padding: int = 0,
) -> bytes:
    """Build an RTP datagram (for tests, benchmarks and test-side senders).

    Args:
        payload_type: The 7-bit payload type.
        sequence: The sequence number; taken modulo 2**16.
        timestamp: The media timestamp; taken modulo 2**32.
        ssrc: The synchronisation source.
        payload: The payload bytes.
        marker: The marker bit.
        csrcs: Up to 15 contributing sources.
        extension: A header extension body (a multiple of 4 bytes), or None for none.
        padding: Padding bytes to append, 0-255 (the last one holds the count).

    Raises:
        ValueError: An argument cannot be encoded.
    """
    if len(csrcs) > _MAX_CSRCS:
        raise ValueError(f"at most {_MAX_CSRCS} CSRCs, got {len(csrcs)}")
    if not 0 <= padding <= 0xFF:
        raise ValueError(f"padding must be 0-255 bytes, got {padding}")
    first = RTP_VERSION << 6 | len(csrcs) | (0x20 if padding else 0)
    header_extension = b""
    if extension is not None:
        if len(extension) % 4:
            raise ValueError(f"extension must be whole 32-bit words, got {len(extension)} bytes")
        first |= 0x10
        words = len(extension) // 4
        header_extension = _EXTENSION_HEADER.pack(_EXTENSION_PROFILE, words) + extension
    second = payload_type & 0x7F | (0x80 if marker else 0)
    trailer = bytes(padding - 1) + bytes([padding]) if padding else b""
    return b"".join(
        (
            _HEADER.pack(first, second, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc),
            struct.pack(f"!{len(csrcs)}I", *csrcs),
            header_extension,
            payload,
            trailer,
        )
    )


def build_rtcp_bye(ssrcs: Sequence[int]) -> bytes:
    """Build an RTCP BYE packet for up to 31 SSRCs, without a reason."""
    if len(ssrcs) > _MAX_RTCP_COUNT:
        raise ValueError(f"at most {_MAX_RTCP_COUNT} SSRCs, got {len(ssrcs)}")
    header = _RTCP_HEADER.pack(RTP_VERSION << 6 | len(ssrcs), RTCP_BYE, len(ssrcs))
    return header + struct.pack(f"!{len(ssrcs)}I", *ssrcs)
