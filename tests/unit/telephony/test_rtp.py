"""RTP parsing: every malformed shape is rejected with its reason; builders round-trip."""

from __future__ import annotations

import struct

import pytest

from theo.telephony.rtp import (
    MalformedPacketError,
    RtpPacket,
    build_rtcp_bye,
    build_rtp,
    is_rtcp,
    parse_rtp,
    rtcp_bye_ssrcs,
)

PAYLOAD = bytes(range(160))


def _header(*, first: int = 0x80, second: int = 0, sequence: int = 1) -> bytes:
    return struct.pack("!BBHII", first, second, sequence, 1000, 0xCAFE)


def _reason(datagram: bytes) -> str:
    with pytest.raises(MalformedPacketError) as caught:
        parse_rtp(datagram)
    return caught.value.reason


def test_plain_packet_round_trips() -> None:
    datagram = build_rtp(
        payload_type=8, sequence=65535, timestamp=2**32 - 1, ssrc=0xDEADBEEF, payload=PAYLOAD
    )
    assert len(datagram) == 12 + len(PAYLOAD)
    assert parse_rtp(datagram) == RtpPacket(
        payload_type=8,
        sequence=65535,
        timestamp=2**32 - 1,
        ssrc=0xDEADBEEF,
        marker=False,
        payload=PAYLOAD,
    )


@pytest.mark.parametrize("padding", [1, 4, 255])
def test_csrcs_extension_padding_and_marker_are_skipped(padding: int) -> None:
    datagram = build_rtp(
        payload_type=118,
        sequence=7,
        timestamp=320,
        ssrc=42,
        payload=PAYLOAD,
        marker=True,
        csrcs=(1, 2, 3),
        extension=b"\x10\xaa\x00\x00" * 2,
        padding=padding,
    )
    assert datagram[0] == 0x80 | 0x20 | 0x10 | 3
    assert datagram[-1] == padding
    packet = parse_rtp(datagram)
    assert (packet.payload_type, packet.sequence, packet.timestamp, packet.ssrc) == (
        118,
        7,
        320,
        42,
    )
    assert packet.marker
    assert packet.payload == PAYLOAD


def test_builder_wraps_sequence_and_timestamp() -> None:
    packet = parse_rtp(
        build_rtp(payload_type=0, sequence=65536 + 5, timestamp=2**32 + 9, ssrc=1, payload=b"x")
    )
    assert (packet.sequence, packet.timestamp) == (5, 9)


def test_empty_extension_is_allowed() -> None:
    datagram = build_rtp(
        payload_type=0, sequence=1, timestamp=0, ssrc=1, payload=b"ab", extension=b""
    )
    assert parse_rtp(datagram).payload == b"ab"


def test_shorter_than_fixed_header() -> None:
    assert _reason(b"") == "too_short"
    assert _reason(_header()[:11]) == "too_short"


@pytest.mark.parametrize("version", [0, 1, 3])
def test_version_other_than_two(version: int) -> None:
    assert _reason(_header(first=version << 6) + PAYLOAD) == "bad_version"


def test_csrc_count_past_the_end() -> None:
    assert _reason(_header(first=0x80 | 15) + b"\x00" * 16) == "csrc_past_end"
    # Exactly the CSRCs and nothing after: the list fits, the payload is what is missing.
    assert _reason(_header(first=0x80 | 2) + b"\x00" * 8) == "empty_payload"


def test_extension_header_or_body_past_the_end() -> None:
    assert _reason(_header(first=0x90) + b"\xbe\xde") == "extension_past_end"
    too_long = _header(first=0x90) + struct.pack("!HH", 0xBEDE, 3) + b"\x00" * 8
    assert _reason(too_long) == "extension_past_end"


def test_padding_larger_than_the_payload() -> None:
    assert _reason(_header(first=0xA0) + b"\x01\x02\x03\x05") == "bad_padding"
    # Padding after a CSRC list counts only the bytes after the list.
    assert _reason(_header(first=0xA1) + b"\x00" * 4 + b"\x01\x03") == "bad_padding"


def test_padding_count_zero() -> None:
    assert _reason(_header(first=0xA0) + b"\x01\x02\x00") == "bad_padding"


def test_padding_that_eats_the_whole_payload() -> None:
    assert _reason(_header(first=0xA0) + b"\x00\x00\x03") == "empty_payload"


def test_header_without_payload() -> None:
    assert _reason(_header()) == "empty_payload"


def test_error_is_a_value_error_with_reason_in_message() -> None:
    error = MalformedPacketError("too_short", "3 bytes")
    assert isinstance(error, ValueError)
    assert str(error) == "too_short: 3 bytes"


def test_builder_rejects_what_it_cannot_encode() -> None:
    with pytest.raises(ValueError, match="CSRCs"):
        build_rtp(payload_type=0, sequence=0, timestamp=0, ssrc=0, payload=b"x", csrcs=range(16))
    with pytest.raises(ValueError, match="32-bit words"):
        build_rtp(payload_type=0, sequence=0, timestamp=0, ssrc=0, payload=b"x", extension=b"abc")
    with pytest.raises(ValueError, match="padding"):
        build_rtp(payload_type=0, sequence=0, timestamp=0, ssrc=0, payload=b"x", padding=256)


def test_rtcp_is_told_apart_from_rtp() -> None:
    assert is_rtcp(build_rtcp_bye([1]))
    receiver_report = bytes([0x80, 201, 0, 1]) + b"\x00\x00\x00\x01"
    assert is_rtcp(receiver_report)
    assert not is_rtcp(build_rtp(payload_type=0, sequence=1, timestamp=0, ssrc=1, payload=b"x"))
    # The marker bit on a dynamic payload type stays below 192 (RFC 5761's reason to avoid 64-95).
    assert not is_rtcp(
        build_rtp(payload_type=118, sequence=1, timestamp=0, ssrc=1, payload=b"x", marker=True)
    )
    assert not is_rtcp(bytes([0x40, 203]))  # version 1
    assert not is_rtcp(b"\x80")


def test_bye_ssrcs_from_a_compound_packet() -> None:
    receiver_report = bytes([0x80, 201, 0, 1]) + struct.pack("!I", 99)
    sdes = bytes([0x81, 202, 0, 2]) + struct.pack("!I", 99) + b"\x01\x02ab"
    compound = receiver_report + sdes + build_rtcp_bye([7, 0xFFFFFFFF])
    assert rtcp_bye_ssrcs(compound) == [7, 0xFFFFFFFF]
    assert rtcp_bye_ssrcs(receiver_report) == []


def test_bye_with_a_reason_string() -> None:
    bye = bytes([0x81, 203, 0, 3]) + struct.pack("!I", 5) + b"\x03bye\x00\x00\x00\x00"
    assert rtcp_bye_ssrcs(bye) == [5]


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"", "too_short"),
        (build_rtcp_bye([1]) + b"\x80\xcb", "too_short"),
        (bytes([0x41, 203, 0, 1]) + b"\x00" * 4, "bad_version"),
        (bytes([0x81, 203, 0, 2]) + b"\x00" * 4, "length_past_end"),
        (bytes([0x82, 203, 0, 1]) + b"\x00" * 4, "bye_past_end"),
    ],
)
def test_malformed_rtcp(datagram: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacketError) as caught:
        rtcp_bye_ssrcs(datagram)
    assert caught.value.reason == reason


def test_bye_builder_limits() -> None:
    assert build_rtcp_bye([]) == bytes([0x80, 203, 0, 0])
    with pytest.raises(ValueError, match="31"):
        build_rtcp_bye(range(32))
