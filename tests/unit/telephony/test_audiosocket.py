"""AudioSocket framing: frames off a real StreamReader, and every way a stream goes wrong."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from theo.telephony.audiosocket import (
    SLIN_RATES,
    Frame,
    FrameKind,
    MalformedFrameError,
    encode_frame,
    read_frame,
    uuid_from_payload,
)

CALL_ID = uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
TIMEOUT_S = 1.0


def reader_with(data: bytes, *, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def test_reads_a_call_frame_by_frame_until_clean_eof() -> None:
    audio = bytes(range(256)) * 2 + b"\x01\x02"
    reader = reader_with(
        encode_frame(FrameKind.UUID, CALL_ID.bytes)
        + encode_frame(FrameKind.AUDIO, audio)
        + encode_frame(0x12, b"\x00\x01")
        + encode_frame(FrameKind.DTMF, b"#")
        + encode_frame(FrameKind.HANGUP)
    )
    frames = [await read_frame(reader, timeout_s=TIMEOUT_S) for _ in range(6)]
    assert frames == [
        Frame(kind=FrameKind.UUID, payload=CALL_ID.bytes),
        Frame(kind=FrameKind.AUDIO, payload=audio),
        Frame(kind=0x12, payload=b"\x00\x01"),
        Frame(kind=FrameKind.DTMF, payload=b"#"),
        Frame(kind=FrameKind.HANGUP, payload=b""),
        None,
    ]
    assert frames[0] is not None
    assert uuid_from_payload(frames[0].payload) == CALL_ID


async def test_frame_split_across_reads_is_reassembled() -> None:
    reader = asyncio.StreamReader()
    frame = encode_frame(FrameKind.AUDIO, bytes(320))
    pending = asyncio.ensure_future(read_frame(reader, timeout_s=TIMEOUT_S))
    for start in range(0, len(frame), 50):
        reader.feed_data(frame[start : start + 50])
        await asyncio.sleep(0)
    assert await pending == Frame(kind=FrameKind.AUDIO, payload=bytes(320))


async def test_empty_stream_is_a_clean_eof() -> None:
    assert await read_frame(reader_with(b""), timeout_s=TIMEOUT_S) is None


@pytest.mark.parametrize(
    "data",
    [b"\x10", b"\x10\x01", b"\x10\x01\x40" + bytes(100)],
    ids=["kind_only", "half_length", "short_payload"],
)
async def test_eof_inside_a_frame_is_truncated(data: bytes) -> None:
    with pytest.raises(MalformedFrameError) as caught:
        await read_frame(reader_with(data), timeout_s=TIMEOUT_S)
    assert caught.value.reason == "truncated"


async def test_half_frame_then_silence_is_stalled() -> None:
    reader = reader_with(b"\x10\x01\x40" + bytes(10), eof=False)
    with pytest.raises(MalformedFrameError) as caught:
        await read_frame(reader, timeout_s=0.05)
    assert caught.value.reason == "stalled"


async def test_no_frame_at_all_times_out() -> None:
    with pytest.raises(TimeoutError):
        await read_frame(reader_with(b"", eof=False), timeout_s=0.05)


def test_uuid_payload_must_be_sixteen_bytes() -> None:
    for payload in (b"", CALL_ID.bytes[:15], CALL_ID.bytes + b"\x00", str(CALL_ID).encode()):
        with pytest.raises(MalformedFrameError) as caught:
            uuid_from_payload(payload)
        assert caught.value.reason == "bad_uuid"


def test_encode_frame_layout_and_limit() -> None:
    assert encode_frame(FrameKind.HANGUP) == b"\x00\x00\x00"
    assert encode_frame(FrameKind.ERROR, b"\x02") == b"\xff\x00\x01\x02"
    assert encode_frame(FrameKind.AUDIO, bytes(0xFFFF))[:3] == b"\x10\xff\xff"
    with pytest.raises(ValueError, match="65535"):
        encode_frame(FrameKind.AUDIO, bytes(0x10000))


def test_slin_rates_match_asterisk() -> None:
    assert SLIN_RATES[FrameKind.AUDIO] == 8000
    assert SLIN_RATES[0x12] == 16000
    assert sorted(SLIN_RATES) == list(range(0x10, 0x19))
    assert int(FrameKind.DTMF) == 0x03
