"""DTMF key presses carried as RFC 4733 telephone-events in RTP.

A sender repeats the event packet while the key is held (each with the same RTP
timestamp, the press's start, and a growing duration) and sends the end packet three
times, so one press arrives as many packets; :class:`DtmfDetector` reports it once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from theo.telephony.rtp import RtpPacket

__all__ = ["DtmfDetector", "TelephoneEvent", "parse_telephone_event"]

_EVENT = struct.Struct("!BBH")
_DIGITS: Final = "0123456789*#ABCD"  # RFC 4733 section 3.2: events 0-15 are the DTMF keys


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One telephone-event payload.

    Attributes:
        event: The event code (0-15 are DTMF keys).
        end: Whether this packet marks the end of the event.
        volume: The power level in -dBm0 (0-63); meaningful for DTMF only.
        duration: The duration so far, in RTP timestamp units.
    """

    event: int
    end: bool
    volume: int
    duration: int

    @property
    def digit(self) -> str | None:
        """The DTMF key (``0``-``9``, ``*``, ``#``, ``A``-``D``), or None for other events."""
        return _DIGITS[self.event] if self.event < len(_DIGITS) else None


def parse_telephone_event(payload: bytes) -> TelephoneEvent | None:
    """Parse a telephone-event payload; None if it is shorter than its 4 bytes."""
    if len(payload) < _EVENT.size:
        return None
    event, flags, duration = _EVENT.unpack_from(payload)
    return TelephoneEvent(
        event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration
    )


class DtmfDetector:
    """Turns a stream of telephone-event packets into one digit per key press.

    A press is identified by its source and RTP timestamp, so it is reported on the first
    of its packets that arrives (the start, a repeat or an end packet) and never again.
    Feed it only the packets of the negotiated telephone-event payload type.
    """

    def __init__(self) -> None:
        """Start with no press seen."""
        self._last_press: tuple[int, int] | None = None

    def feed(self, packet: RtpPacket) -> str | None:
        """The digit of a new key press, or None for a repeat or a non-DTMF event."""
        event = parse_telephone_event(packet.payload)
        if event is None or event.digit is None:
            return None
        press = (packet.ssrc, packet.timestamp)
        if press == self._last_press:
            return None
        self._last_press = press
        return event.digit
