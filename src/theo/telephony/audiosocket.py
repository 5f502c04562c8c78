"""Asterisk AudioSocket framing over TCP.

A frame is a 1-byte kind, a 2-byte big-endian payload length, then the payload. The kinds
are Asterisk's ``enum ast_audiosocket_msg_kind`` (``include/asterisk/res_audiosocket.h``):
0x10 is signed linear 8 kHz, and since Asterisk 20.17, 21.12, 22.7 and 23.1 (late 2025)
0x11-0x18 carry signed linear at the other ``slin*`` rates, little-endian mono like 0x10.
"""

from __future__ import annotations

import asyncio
import enum
import struct
import uuid
from dataclasses import dataclass
from typing import Final

__all__ = [
    "SLIN_RATES",
    "Frame",
    "FrameKind",
    "MalformedFrameError",
    "encode_frame",
    "read_frame",
    "uuid_from_payload",
]

_HEADER = struct.Struct("!BH")
_MAX_PAYLOAD: Final = 0xFFFF


class FrameKind(enum.IntEnum):
    """The AudioSocket frame kinds that are not audio at a non-default rate."""

    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    AUDIO = 0x10
    ERROR = 0xFF


SLIN_RATES: Final[dict[int, int]] = {
    0x10: 8000,
    0x11: 12000,
    0x12: 16000,
    0x13: 24000,
    0x14: 32000,
    0x15: 44100,
    0x16: 48000,
    0x17: 96000,
    0x18: 192000,
}
"""Each audio frame kind and the sample rate of its PCM16 little-endian mono payload."""


class MalformedFrameError(ValueError):
    """A byte stream that does not hold well-formed AudioSocket frames.

    Attributes:
        reason: A short snake_case label (``truncated``, ``stalled``, ``bad_uuid``).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Frame:
    """One AudioSocket frame.

    Attributes:
        kind: The kind byte (a :class:`FrameKind` or a key of :data:`SLIN_RATES`; unknown
            kinds are passed through for the caller to reject).
        payload: The payload bytes.
    """

    kind: int
    payload: bytes


async def read_frame(reader: asyncio.StreamReader, *, timeout_s: float) -> Frame | None:
    """Read the next frame, giving the whole frame ``timeout_s`` seconds to arrive.

    Returns:
        The frame, or None if the stream ended cleanly before a frame began.

    Raises:
        TimeoutError: No frame began within ``timeout_s`` (the peer went quiet).
        MalformedFrameError: ``truncated`` if the stream ended inside a frame, ``stalled``
            if a frame began but did not complete in time (a half-sent frame must not hold
            the call open).
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with asyncio.timeout_at(deadline):
        kind = await reader.read(1)
    if not kind:
        return None
    try:
        async with asyncio.timeout_at(deadline):
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            payload = await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise MalformedFrameError("truncated", f"{len(exc.partial)} bytes then EOF") from exc
    except TimeoutError as exc:
        raise MalformedFrameError("stalled", f"frame incomplete after {timeout_s}s") from exc
    return Frame(kind=kind[0], payload=payload)


def encode_frame(kind: int, payload: bytes = b"") -> bytes:
    """Frame a payload of up to 65535 bytes as ``kind``."""
    if len(payload) > _MAX_PAYLOAD:
        raise ValueError(f"an AudioSocket payload holds at most {_MAX_PAYLOAD} bytes")
    return _HEADER.pack(kind, len(payload)) + payload


def uuid_from_payload(payload: bytes) -> uuid.UUID:
    """The call's UUID from a :attr:`FrameKind.UUID` payload (16 bytes, binary).

    Raises:
        MalformedFrameError: ``bad_uuid`` if the payload is not exactly 16 bytes.
    """
    if len(payload) != 16:
        raise MalformedFrameError("bad_uuid", f"{len(payload)} bytes")
    return uuid.UUID(bytes=payload)
