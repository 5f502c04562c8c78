"""The send side of an RTP stream: sequence numbers, timestamps, marker, codec."""

from __future__ import annotations

import numpy as np

from theo.telephony.codecs import PCMA, PCMU, codec_for
from theo.telephony.rtp import parse_rtp
from theo.telephony.rtp_sender import RtpSender

FRAME = np.round(8000 * np.sin(np.arange(160) / 5)).astype("<i2").tobytes()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_packets_count_up_and_carry_the_encoded_frame() -> None:
    clock = Clock()
    sender = RtpSender(PCMU, clock)
    packets = []
    for index in range(3):
        packets.append(parse_rtp(sender.packet(FRAME, talkspurt_start=index == 0)))
        clock.now += 0.02
    assert [p.payload_type for p in packets] == [0, 0, 0]
    assert {p.ssrc for p in packets} == {sender.ssrc}
    assert [p.marker for p in packets] == [True, False, False]
    assert [(p.sequence - packets[0].sequence) & 0xFFFF for p in packets] == [0, 1, 2]
    assert [(p.timestamp - packets[0].timestamp) & 0xFFFFFFFF for p in packets] == [0, 160, 320]
    decoded = np.frombuffer(PCMU.decode(packets[1].payload), "<i2")
    original = np.frombuffer(FRAME, "<i2")
    assert np.max(np.abs(decoded.astype(int) - original)) < 300  # mu-law's step at 8000


def test_a_pause_moves_the_timestamp_on_by_the_wall_clock() -> None:
    clock = Clock()
    sender = RtpSender(PCMA, clock)
    first = parse_rtp(sender.packet(FRAME, True))
    clock.now += 0.02
    second = parse_rtp(sender.packet(FRAME, False))
    clock.now += 0.02 + 1.5  # 1.5 s of silence after the talkspurt
    third = parse_rtp(sender.packet(FRAME, True))
    assert (second.timestamp - first.timestamp) & 0xFFFFFFFF == 160
    assert (third.timestamp - second.timestamp) & 0xFFFFFFFF == 160 + 12_000
    assert (third.sequence - second.sequence) & 0xFFFF == 1  # no packets were lost
    assert third.marker


def test_l16_goes_out_big_endian() -> None:
    l16 = codec_for(118)
    assert l16 is not None
    frame = np.array([1, -2, 300], dtype="<i2")
    packet = parse_rtp(RtpSender(l16).packet(frame.tobytes(), True))
    assert packet.payload == frame.astype(">i2").tobytes()
    assert l16.decode(packet.payload) == frame.tobytes()
