"""RFC 4733 telephone-events and one digit per key press."""

from __future__ import annotations

import struct

import pytest

from theo.telephony.dtmf import DtmfDetector, TelephoneEvent, parse_telephone_event
from theo.telephony.rtp import RtpPacket


def _event(code: int, *, end: bool = False, volume: int = 10, duration: int = 160) -> bytes:
    return struct.pack("!BBH", code, (0x80 if end else 0) | volume, duration)


def _packet(payload: bytes, *, timestamp: int, sequence: int = 1, ssrc: int = 7) -> RtpPacket:
    return RtpPacket(
        payload_type=101,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        marker=False,
        payload=payload,
    )


def test_parse_fields() -> None:
    assert parse_telephone_event(_event(11, end=True, volume=63, duration=1280)) == TelephoneEvent(
        event=11, end=True, volume=63, duration=1280
    )
    # The reserved bit is not part of the volume.
    assert parse_telephone_event(b"\x05\x4a\x00\xa0") == TelephoneEvent(
        event=5, end=False, volume=10, duration=160
    )


def test_too_short_is_none() -> None:
    assert parse_telephone_event(b"\x01\x80\x00") is None


@pytest.mark.parametrize(
    ("code", "digit"),
    [(0, "0"), (9, "9"), (10, "*"), (11, "#"), (12, "A"), (15, "D"), (16, None), (66, None)],
)
def test_digits(code: int, digit: str | None) -> None:
    event = parse_telephone_event(_event(code))
    assert event is not None
    assert event.digit == digit


def test_one_digit_per_press_despite_repeats_and_triple_end() -> None:
    detector = DtmfDetector()
    seen: list[str | None] = []
    sequence = 0
    for digit_code, start in ((1, 8000), (1, 9600), (11, 12000)):
        for duration in (160, 320, 480):
            sequence += 1
            seen.append(
                detector.feed(
                    _packet(
                        _event(digit_code, duration=duration), timestamp=start, sequence=sequence
                    )
                )
            )
        for _ in range(3):
            sequence += 1
            seen.append(
                detector.feed(
                    _packet(
                        _event(digit_code, end=True, duration=640),
                        timestamp=start,
                        sequence=sequence,
                    )
                )
            )
    assert [digit for digit in seen if digit is not None] == ["1", "1", "#"]
    assert seen[0] == "1"  # reported on the first packet of a press, not at its end


def test_press_seen_only_by_its_end_packets() -> None:
    detector = DtmfDetector()
    end = _event(4, end=True, duration=800)
    assert [detector.feed(_packet(end, timestamp=100)) for _ in range(3)] == ["4", None, None]


def test_non_digit_events_and_short_payloads_are_ignored() -> None:
    detector = DtmfDetector()
    assert detector.feed(_packet(_event(32), timestamp=1)) is None  # a tone event, not a key
    assert detector.feed(_packet(b"\x01", timestamp=2)) is None
    assert detector.feed(_packet(_event(2), timestamp=3)) == "2"


def test_same_timestamp_from_another_source_is_a_new_press() -> None:
    detector = DtmfDetector()
    assert detector.feed(_packet(_event(3), timestamp=500, ssrc=1)) == "3"
    assert detector.feed(_packet(_event(3), timestamp=500, ssrc=2)) == "3"
