"""The sending side of an RTP stream: Theo's spoken replies back to a caller.

RFC 3550 section 5.1: the sequence number goes up by one per packet from a random start;
the timestamp counts samples from a random start and keeps counting the wall clock
through pauses, so the receiver plays the next talkspurt after the right gap; the marker
bit flags a talkspurt's first packet. The SSRC is random, chosen once per stream.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from theo.telephony.codecs import RtpCodec
from theo.telephony.rtp import build_rtp

__all__ = ["RtpSender"]


class RtpSender:
    """Packs PCM16 frames into RTP packets of one outgoing stream.

    Args:
        codec: the call's codec (payload type, clock rate, encoding).
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, codec: RtpCodec, clock: Callable[[], float] = time.monotonic) -> None:
        self.codec = codec
        self.ssrc = secrets.randbits(32)
        self._clock = clock
        self._sequence = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._next_due: float | None = None
        """When the next packet would be sent had the talkspurt gone on."""

    def packet(self, pcm16: bytes, talkspurt_start: bool) -> bytes:
        """One RTP packet carrying ``pcm16`` (little-endian, at the codec's rate)."""
        now = self._clock()
        rate = self.codec.clock_rate
        if talkspurt_start and self._next_due is not None and now > self._next_due:
            self._timestamp += round((now - self._next_due) * rate)  # the pause
        samples = len(pcm16) // 2
        datagram = build_rtp(
            payload_type=self.codec.payload_type,
            sequence=self._sequence,
            timestamp=self._timestamp,
            ssrc=self.ssrc,
            payload=self.codec.encode(pcm16),
            marker=talkspurt_start,
        )
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + samples) & 0xFFFFFFFF
        self._next_due = now + samples / rate
        return datagram
