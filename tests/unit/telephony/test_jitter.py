"""Jitter buffer: release order, concealed spans and counters for each network fault."""

from __future__ import annotations

import random

import pytest

from theo.telephony.jitter import (
    MAX_HELD_PACKETS,
    Concealed,
    JitterBuffer,
    Played,
    Released,
)
from theo.telephony.rtp import RtpPacket

RATE = 8000
STEP = 160  # 20 ms at 8 kHz, one G.711 byte per sample


def packet(seq: int, ts: int | None = None, *, ssrc: int = 1, size: int = STEP) -> RtpPacket:
    timestamp = seq * STEP if ts is None else ts
    return RtpPacket(
        payload_type=0,
        sequence=seq & 0xFFFF,
        timestamp=timestamp & 0xFFFFFFFF,
        ssrc=ssrc,
        marker=False,
        payload=bytes(size),
    )


def described(items: list[Released]) -> list[tuple[str, int]]:
    """("play", sequence) and ("gap", samples), in release order."""
    return [
        ("play", item.packet.sequence) if isinstance(item, Played) else ("gap", item.samples)
        for item in items
    ]


def push_all(buffer: JitterBuffer, packets: list[RtpPacket]) -> list[tuple[str, int]]:
    out: list[Released] = []
    for index, item in enumerate(packets):
        out += buffer.push(item, arrival_s=index * 0.02)
    return described(out)


def plays(*seqs: int) -> list[tuple[str, int]]:
    return [("play", seq) for seq in seqs]


def test_in_order_stream_is_released_immediately() -> None:
    buffer = JitterBuffer(RATE)
    for seq in range(10):
        assert described(buffer.push(packet(seq), arrival_s=seq * 0.02)) == plays(seq)
    assert buffer.stats.as_dict() == {
        "received": 10,
        "lost": 0,
        "late": 0,
        "duplicate": 0,
        "reordered": 0,
        "ssrc_changes": 0,
        "jitter_ms": 0.0,
    }


def test_first_packet_sets_the_expected_sequence() -> None:
    buffer = JitterBuffer(RATE)
    assert push_all(buffer, [packet(5000), packet(5001)]) == plays(5000, 5001)


def test_wrap_around_of_sequence_and_timestamp() -> None:
    buffer = JitterBuffer(RATE)
    base = 2**32 - 2 * STEP  # the timestamp wraps between the same packets as the sequence
    seqs = [65533, 65534, 0, 65535, 1, 2]
    order = push_all(buffer, [packet(seq, base + ((seq - 65534) % 65536) * STEP) for seq in seqs])
    assert order == plays(65533, 65534, 65535, 0, 1, 2)
    assert buffer.stats.reordered == 1
    assert buffer.stats.lost == 0


def test_reordering_within_depth_is_restored() -> None:
    buffer = JitterBuffer(RATE)
    assert push_all(buffer, [packet(s) for s in (0, 1, 3, 2, 4)]) == plays(0, 1, 2, 3, 4)
    assert (buffer.stats.reordered, buffer.stats.lost, buffer.stats.late) == (1, 0, 0)


def test_reversed_burst_within_depth() -> None:
    buffer = JitterBuffer(RATE)
    steps = [described(buffer.push(packet(s), 0.0)) for s in (0, 3, 2, 1, 4)]
    assert steps == [plays(0), [], [], plays(1, 2, 3), plays(4)]
    assert buffer.stats.reordered == 2


def test_loss_is_concealed_once_the_depth_is_reached() -> None:
    buffer = JitterBuffer(RATE, depth_ms=60)
    steps = [described(buffer.push(packet(s), 0.0)) for s in (0, 1, 3, 4, 5, 6)]
    # 60 ms = 480 units: packet 5 ends the wait (800 - 320 >= 480), not packet 4.
    assert steps == [plays(0), plays(1), [], [], [("gap", STEP), *plays(3, 4, 5)], plays(6)]
    assert buffer.stats.lost == 1
    assert buffer.held == 0


def test_several_lost_packets_are_one_span() -> None:
    buffer = JitterBuffer(RATE)
    assert push_all(buffer, [packet(s) for s in (0, 1, 4, 5, 6)]) == [
        *plays(0, 1),
        ("gap", 2 * STEP),
        *plays(4, 5, 6),
    ]
    assert buffer.stats.lost == 2


def test_loss_before_the_packet_size_is_known() -> None:
    buffer = JitterBuffer(RATE)
    assert push_all(buffer, [packet(s) for s in (0, 2, 3, 4)]) == [
        *plays(0),
        ("gap", STEP),
        *plays(2, 3, 4),
    ]


def test_late_packet_after_concealment_is_dropped() -> None:
    buffer = JitterBuffer(RATE)
    push_all(buffer, [packet(s) for s in (0, 1, 3, 4, 5)])
    assert buffer.push(packet(2), 1.0) == []
    assert (buffer.stats.late, buffer.stats.duplicate, buffer.stats.lost) == (1, 0, 1)


def test_duplicates_already_played_and_already_held() -> None:
    buffer = JitterBuffer(RATE)
    assert push_all(buffer, [packet(s) for s in (0, 1, 1, 3, 3, 2, 2)]) == plays(0, 1, 2, 3)
    assert buffer.stats.duplicate == 3
    assert (buffer.stats.late, buffer.stats.lost, buffer.stats.received) == (0, 0, 7)


def test_silence_suppression_gap_is_filled() -> None:
    buffer = JitterBuffer(RATE, max_gap_ms=1000)
    out = push_all(buffer, [packet(s) for s in range(4)])
    silence = 4000  # half a second the sender did not send
    out += described(buffer.push(packet(4, 4 * STEP + silence), 1.0))
    out += described(buffer.push(packet(5, 5 * STEP + silence), 1.02))
    assert out == [*plays(0, 1, 2, 3), ("gap", silence), *plays(4, 5)]


def test_timestamp_jump_beyond_max_gap_or_backwards_is_a_clock_reset() -> None:
    buffer = JitterBuffer(RATE, max_gap_ms=1000)
    push_all(buffer, [packet(s) for s in range(4)])
    forward = 3 * STEP + RATE + STEP + 1  # a packet, then one unit more than max_gap
    assert described(buffer.push(packet(4, forward), 1.0)) == plays(4)
    assert described(buffer.push(packet(5, 7), 1.02)) == plays(5)  # backwards
    # The packet size learned before the resets still holds: no spurious gaps after them.
    assert described(buffer.push(packet(6, 7 + STEP), 1.04)) == plays(6)
    assert described(buffer.push(packet(7, 7 + 2 * STEP), 1.06)) == plays(7)
    assert buffer.stats.lost == 0


def test_loss_across_a_clock_reset_conceals_only_the_lost_packets() -> None:
    buffer = JitterBuffer(RATE)
    out = push_all(buffer, [packet(s) for s in range(4)])
    out += described(buffer.push(packet(5, 10**6), 1.0))
    assert out == [*plays(0, 1, 2, 3), ("gap", STEP), *plays(5)]
    assert buffer.stats.lost == 1


def test_variable_packet_sizes_leave_no_spurious_gaps() -> None:
    buffer = JitterBuffer(RATE)
    sizes = [160, 160, 160, 240, 240, 240, 80, 80]
    packets, ts = [], 0
    for seq, size in enumerate(sizes):
        packets.append(packet(seq, ts, size=size))
        ts += size
    lost = packets.pop(4)  # a 30 ms packet
    out = push_all(buffer, packets)
    assert out == [*plays(0, 1, 2, 3), ("gap", len(lost.payload)), *plays(5, 6, 7)]


def test_wideband_l16_packets_conceal_in_samples() -> None:
    buffer = JitterBuffer(16000)
    # L16 at 16 kHz: 20 ms = 320 samples = 640 bytes.
    packets = [packet(s, s * 320, size=640) for s in range(8) if s != 3]
    assert push_all(buffer, packets) == [*plays(0, 1, 2), ("gap", 320), *plays(4, 5, 6, 7)]


def test_ssrc_change_releases_what_is_held_and_starts_over() -> None:
    buffer = JitterBuffer(RATE, depth_ms=1000)
    out = push_all(buffer, [packet(s) for s in (0, 1, 3)])
    assert out == plays(0, 1)
    changed = described(buffer.push(packet(500, 123_456, ssrc=2), 1.0))
    assert changed == [("gap", STEP), *plays(3, 500)]
    next_packet = packet(501, 123_456 + STEP, ssrc=2)
    assert buffer.push(next_packet, 1.02) == [Played(next_packet)]
    assert (buffer.stats.ssrc_changes, buffer.stats.lost) == (1, 1)
    # A stray packet of the old source is another change, not a late packet of this one.
    assert described(buffer.push(packet(4, ssrc=1), 1.04)) == plays(4)
    assert buffer.stats.ssrc_changes == 2


def test_held_packets_are_bounded() -> None:
    buffer = JitterBuffer(RATE, depth_ms=100_000)  # the depth alone would wait forever
    assert described(buffer.push(packet(0), 0.0)) == plays(0)
    for seq in range(2, 2 + MAX_HELD_PACKETS):
        assert buffer.push(packet(seq), 0.0) == []
    assert buffer.held == MAX_HELD_PACKETS
    released = described(buffer.push(packet(2 + MAX_HELD_PACKETS), 0.0))
    assert released == [("gap", STEP), *plays(*range(2, 3 + MAX_HELD_PACKETS))]
    assert (buffer.held, buffer.stats.lost) == (0, 1)


def test_flush_releases_everything_and_conceals_gaps() -> None:
    buffer = JitterBuffer(RATE, depth_ms=1000)
    assert push_all(buffer, [packet(s) for s in (0, 1, 3, 4, 6)]) == plays(0, 1)
    assert described(buffer.flush()) == [("gap", STEP), *plays(3, 4), ("gap", STEP), *plays(6)]
    assert buffer.stats.lost == 2
    assert buffer.flush() == []


def test_jitter_of_a_paced_stream_is_zero() -> None:
    buffer = JitterBuffer(RATE)
    for seq in range(200):
        buffer.push(packet(seq), arrival_s=100.0 + seq * 0.02)
    assert buffer.stats.jitter_ms == pytest.approx(0.0, abs=1e-6)


def test_jitter_follows_rfc_3550() -> None:
    rng = random.Random(3550)
    arrivals = [seq * 0.02 + rng.uniform(0.0, 0.03) for seq in range(500)]
    buffer = JitterBuffer(RATE)
    expected = 0.0
    for seq, arrival in enumerate(arrivals):
        buffer.push(packet(seq), arrival)
        if seq:
            d = (arrival - arrivals[seq - 1]) * RATE - STEP
            expected += (abs(d) - expected) / 16
    assert buffer.stats.jitter_ms == pytest.approx(expected / RATE * 1000)
    # Uniform 0-30 ms delays: mean |D| is 10 ms.
    assert 5.0 < buffer.stats.jitter_ms < 15.0


def test_jitter_is_measured_in_arrival_order_across_timestamp_wrap() -> None:
    buffer = JitterBuffer(RATE)
    base = 2**32 - 3 * STEP
    for index, seq in enumerate((0, 1, 3, 2, 4, 5)):
        buffer.push(
            packet(seq, base + seq * STEP), arrival_s=seq * 0.02 + (0.001 if index == 3 else 0)
        )
    # Packets 3 and 2 arrive each at their own send time (within 1 ms): D stays tiny.
    assert 0.0 < buffer.stats.jitter_ms < 0.5


@pytest.mark.parametrize("kwargs", [{"clock_rate": 0}, {"clock_rate": RATE, "depth_ms": -1}])
def test_rejects_bad_configuration(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="clock_rate"):
        JitterBuffer(**kwargs)


def test_concealed_is_a_plain_value() -> None:
    assert Concealed(160) == Concealed(160)
    assert Played(packet(1)) == Played(packet(1))
