"""A real WebSocket client for the realtime protocol, used by the end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection

from tests.helpers.audio import read_wav
from tests.helpers.server import FIXTURES


@dataclass
class SessionLog:
    """Every event a session received, with arrival times relative to the first frame."""

    events: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    audio: list[bytes] = field(default_factory=list)
    """Binary messages (spoken audio), in order."""
    audio_times: list[float] = field(default_factory=list)
    audio_after: list[int] = field(default_factory=list)
    """For each audio message, how many events had arrived before it."""

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def finals(self) -> list[str]:
        return [e["text"] for e in self.of("transcript.final")]

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def record_audio(self, message: bytes, at: float) -> None:
        self.audio.append(message)
        self.audio_times.append(at)
        self.audio_after.append(len(self.events))


def pcm16_of(name: str) -> tuple[bytes, int]:
    samples, rate = read_wav(FIXTURES / name)
    return samples.astype("<i2").tobytes(), rate


def silence(seconds: float, rate: int) -> bytes:
    return np.zeros(round(seconds * rate), dtype="<i2").tobytes()


def ws_url(base_url: str, model: str, language: str | None = None) -> str:
    url = base_url.replace("http://", "ws://") + f"/v1/realtime?model={model}"
    return url + (f"&language={language}" if language else "")


async def run_session(
    url: str,
    audio: bytes,
    rate: int = 16_000,
    *,
    frame_ms: int = 20,
    pace: float = 1.0,
    commands_before: list[dict[str, Any]] | None = None,
    tail_silence_s: float = 1.0,
    close: bool = True,
    timeout_s: float = 180.0,
    on_progress: Callable[[float, ClientConnection], Awaitable[None]] | None = None,
    bytes_per_sample: int = 2,
) -> SessionLog:
    """Stream ``audio`` (PCM16 at ``rate``) at ``pace`` x real time, then close the session.

    ``on_progress(seconds_sent, ws)`` runs after every frame (to send a command or act on
    the server at a chosen point of the audio). ``bytes_per_sample`` 1 sends G.711 audio
    (the caller encodes it, tail silence included).
    """
    log = SessionLog()
    frame_bytes = rate * frame_ms // 1000 * bytes_per_sample
    bytes_per_second = rate * bytes_per_sample
    payload = audio + (silence(tail_silence_s, rate) if bytes_per_sample == 2 else b"")
    started = time.monotonic()
    async with websockets.connect(url, max_size=None) as ws:

        async def receive() -> None:
            try:
                async for message in ws:
                    if isinstance(message, bytes):
                        log.record_audio(message, time.monotonic() - started)
                        continue
                    log.events.append(json.loads(message))
                    log.times.append(time.monotonic() - started)
                    if log.events[-1]["type"] == "session.closed":
                        return
            except websockets.ConnectionClosed:
                return

        receiver = asyncio.create_task(receive())
        for command in commands_before or []:
            await ws.send(json.dumps(command))
        for index in range(0, len(payload), frame_bytes):
            await ws.send(payload[index : index + frame_bytes])
            if on_progress is not None:
                await on_progress((index + frame_bytes) / bytes_per_second, ws)
            # Pacing the sender like a microphone; not a race-winning sleep.
            due = started + (index + frame_bytes) / bytes_per_second / pace
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        if close:
            await ws.send(json.dumps({"type": "session.close"}))
        await asyncio.wait_for(receiver, timeout_s)
        await ws.close()
        log.close_code = ws.close_code
        log.close_reason = ws.close_reason or ""
    return log
