"""A per-call RTP jitter buffer, driven by packet arrivals alone.

Packets are released in sequence order as soon as they can be: the expected one at once,
a later one only after the packets before it arrive or the buffer gives up on them. It
gives up when the packets it holds span ``depth_ms`` past the expected one (or when it
holds too many), so the delay it adds is bounded by the depth and no timer is needed: a
stream that stops simply leaves the rest for :meth:`JitterBuffer.flush`.

Gaps become :class:`Concealed` spans that the caller fills with silence: not a repeat of
the last packet, so nothing that was not said reaches the recogniser, and the audio clock
keeps pace with the sender's. Spans are measured from RTP timestamps, so packet sizes may
vary; the buffer learns how many clock units a payload byte holds from consecutive packets,
which keeps it codec-agnostic and lets it tell a packet's own length from a silence the
sender suppressed (DTX) between two consecutive sequence numbers.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Final, TypeAlias

from theo.telephony.rtp import RtpPacket

__all__ = ["MAX_HELD_PACKETS", "Concealed", "JitterBuffer", "JitterStats", "Played", "Released"]

MAX_HELD_PACKETS: Final = 64
"""The most packets held at once, whatever their timestamps say (bounds memory per call)."""

_PLAYED_MEMORY: Final = 512  # ~10 s of 20 ms packets: how far back a duplicate is recognised
_MAX_DROPOUT: Final = 3000  # RFC 3550 appendix A.1: a longer sequence jump is a restart


@dataclass
class JitterStats:
    """Counters for one call.

    Attributes:
        received: Every packet pushed.
        lost: Packets never received by the time they were given up on.
        late: Packets that arrived after their place had been concealed (dropped).
        duplicate: Packets already played or already held (dropped).
        reordered: Packets that arrived after a higher sequence number but in time to play.
        ssrc_changes: Times the source changed mid-call.
        jitter_ms: RFC 3550 interarrival jitter, in milliseconds.
    """

    received: int = 0
    lost: int = 0
    late: int = 0
    duplicate: int = 0
    reordered: int = 0
    ssrc_changes: int = 0
    jitter_ms: float = 0.0

    def as_dict(self) -> dict[str, int | float]:
        """The counters by name (for logs and the call summary)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class Played:
    """A packet to decode and play, in sequence order."""

    packet: RtpPacket


@dataclass(frozen=True, slots=True)
class Concealed:
    """A gap of ``samples`` clock-rate samples that the caller fills with silence."""

    samples: int


Released: TypeAlias = Played | Concealed


def _signed(delta: int, bits: int) -> int:
    """A modular difference as the nearest signed value (RFC 3550 A.1 comparisons)."""
    half = 1 << (bits - 1)
    return ((delta + half) & ((1 << bits) - 1)) - half


class JitterBuffer:
    """Reorders one call's RTP packets and marks the gaps between them.

    Sequence numbers and timestamps are extended past their wrap-around by comparing
    within half their range. A change of SSRC releases everything held and starts over.
    """

    def __init__(self, clock_rate: int, *, depth_ms: int = 60, max_gap_ms: int = 1000) -> None:
        """Create an empty buffer.

        Args:
            clock_rate: The RTP clock rate, in units per second (= samples for mono audio).
            depth_ms: How far past a missing packet the held packets may reach before it
                is given up as lost; the most delay the buffer adds.
            max_gap_ms: The longest silence-suppression gap filled between consecutive
                packets; a longer or backwards timestamp jump is a clock reset.

        Raises:
            ValueError: A rate or duration is out of range.
        """
        if clock_rate <= 0 or depth_ms < 0 or max_gap_ms < 0:
            raise ValueError("clock_rate must be positive and durations non-negative")
        self._clock_rate = clock_rate
        self._depth = depth_ms * clock_rate // 1000
        self._max_gap = max_gap_ms * clock_rate // 1000
        self._jitter = 0.0  # in clock units, as RFC 3550 keeps it
        self.stats = JitterStats()
        self._reset_stream()

    def _reset_stream(self) -> None:
        self._ssrc: int | None = None
        self._expected = 0  # extended sequence number of the next packet to release
        self._highest = 0
        self._held: dict[int, tuple[RtpPacket, int]] = {}  # seq -> (packet, extended ts)
        self._last: RtpPacket | None = None
        self._last_seq = 0
        self._last_ts = 0
        # Clock units per payload byte, as (units, bytes): confirmed by two equal readings.
        self._ratio: tuple[int, int] | None = None
        self._reading: tuple[int, int] | None = None
        self._played: deque[int] = deque(maxlen=_PLAYED_MEMORY)
        self._played_set: set[int] = set()
        self._previous_arrival: tuple[float, int] | None = None

    @property
    def held(self) -> int:
        """How many packets are waiting for an earlier one."""
        return len(self._held)

    def push(self, packet: RtpPacket, arrival_s: float) -> list[Released]:
        """Take one packet and return what can be released now, in play order.

        Args:
            packet: The parsed packet.
            arrival_s: When it arrived, in seconds on any monotonic clock.
        """
        self.stats.received += 1
        released: list[Released] = []
        if self._ssrc is not None and packet.ssrc != self._ssrc:
            self._release(released, everything=True)
            self._reset_stream()
            self.stats.ssrc_changes += 1
        self._update_jitter(packet, arrival_s)
        if self._ssrc is None:
            self._ssrc = packet.ssrc
            self._expected = self._highest = packet.sequence
            self._last_ts = packet.timestamp
        seq = self._expected + _signed(packet.sequence - self._expected, 16)
        if seq < self._expected:
            if seq in self._played_set:
                self.stats.duplicate += 1
            else:
                self.stats.late += 1
            return released
        if seq in self._held:
            self.stats.duplicate += 1
            return released
        if seq < self._highest:
            self.stats.reordered += 1
        self._highest = max(self._highest, seq)
        timestamp = self._last_ts + _signed(packet.timestamp - self._last_ts, 32)
        self._held[seq] = (packet, timestamp)
        self._release(released, everything=False)
        return released

    def flush(self) -> list[Released]:
        """Release everything held (the call ended), concealing the gaps between."""
        released: list[Released] = []
        self._release(released, everything=True)
        return released

    def _release(self, out: list[Released], *, everything: bool) -> None:
        while self._held:
            if self._expected not in self._held:
                if not everything and not self._overdue():
                    return
                first = min(self._held)
                self.stats.lost += first - self._expected
                self._expected = first
            packet, timestamp = self._held.pop(self._expected)
            self._play(self._expected, packet, timestamp, out)
            self._expected += 1

    def _overdue(self) -> bool:
        """Whether waiting longer for the expected packet would exceed the depth."""
        if len(self._held) > MAX_HELD_PACKETS:
            return True
        newest = max(timestamp for _, timestamp in self._held.values())
        duration = self._duration(self._last)
        if duration is None:  # nothing learned yet: assume the packets in between are equal
            seq = max(self._held)
            duration = max((self._held[seq][1] - self._last_ts) // (seq - self._last_seq), 0)
        return newest - (self._last_ts + duration) >= self._depth

    def _play(self, seq: int, packet: RtpPacket, timestamp: int, out: list[Released]) -> None:
        if self._last is not None:
            fill = self._fill(seq, timestamp)
            if fill > 0:
                out.append(Concealed(fill))
            if seq == self._last_seq + 1:
                self._learn(timestamp - self._last_ts, len(self._last.payload))
        out.append(Played(packet))
        self._last, self._last_seq, self._last_ts = packet, seq, timestamp
        if len(self._played) == _PLAYED_MEMORY:
            self._played_set.discard(self._played[0])
        self._played.append(seq)
        self._played_set.add(seq)

    def _fill(self, seq: int, timestamp: int) -> int:
        """Clock units of silence between the last played packet and the next one."""
        step = timestamp - self._last_ts
        packets = seq - self._last_seq
        if packets - 1 > _MAX_DROPOUT:
            return 0  # the sender restarted its sequence: nothing to measure against
        duration = self._duration(self._last)
        if duration is None and step > 0:
            duration = step // packets  # nothing learned yet: assume equal packets
        if duration is None:
            return 0
        lost = (packets - 1) * duration  # what the sequence numbers account for
        fill = step - duration
        if step < 0 or fill - lost > self._max_gap:
            return lost  # a clock reset: only the lost packets are known to be missing
        return max(fill, 0)

    def _duration(self, packet: RtpPacket | None) -> int | None:
        if packet is None or self._ratio is None:
            return None
        units, size = self._ratio
        return round(len(packet.payload) * units / size)

    def _learn(self, step: int, size: int) -> None:
        """Record a consecutive pair: ``step`` clock units for a payload of ``size`` bytes.

        A silence-suppression gap or a clock reset is a one-off reading; the ratio only
        moves when two readings in a row agree, so it stays that of the codec.
        """
        if step <= 0 or size <= 0:
            return
        previous = self._reading
        confirmed = previous is not None and step * previous[1] == previous[0] * size
        if self._ratio is None or confirmed:
            self._ratio = (step, size)
        self._reading = (step, size)

    def _update_jitter(self, packet: RtpPacket, arrival_s: float) -> None:
        """RFC 3550 section 6.4.1, over consecutive arrivals from one source."""
        arrival = arrival_s * self._clock_rate
        if self._previous_arrival is not None:
            previous_arrival, previous_timestamp = self._previous_arrival
            spacing = _signed(packet.timestamp - previous_timestamp, 32)
            difference = (arrival - previous_arrival) - spacing
            self._jitter += (abs(difference) - self._jitter) / 16
            self.stats.jitter_ms = self._jitter * 1000 / self._clock_rate
        self._previous_arrival = (arrival, packet.timestamp)
