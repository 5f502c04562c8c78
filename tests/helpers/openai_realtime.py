"""Driving a Theo server with the official ``openai`` SDK's Realtime client."""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr

from tests.helpers.audio import read_wav
from tests.helpers.server import FIXTURES

TRANSCRIPTION = "conversation.item.input_audio_transcription"
APPEND_S = 0.05  # agent frameworks send 50 ms appends


def pcm24k_of(name: str) -> bytes:
    """A fixture as 24 kHz PCM16, OpenAI's input format."""
    samples, rate = read_wav(FIXTURES / name)
    resampled = soxr.resample(samples.astype(np.float32) / 32768, rate, 24_000)
    return (np.clip(resampled, -1, 1) * 32767).astype("<i2").tobytes()


def chunks(audio: bytes, bytes_per_second: int, seconds: float = APPEND_S) -> list[str]:
    """``audio`` as base64 appends of ``seconds`` each."""
    step = int(bytes_per_second * seconds)
    return [base64.b64encode(audio[i : i + step]).decode() for i in range(0, len(audio), step)]


@dataclass
class EventLog:
    """Server events as dicts, with their arrival times."""

    events: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def index(self, kind: str, item_id: str | None = None) -> int:
        for i, event in enumerate(self.events):
            if event["type"] == kind and (item_id is None or event.get("item_id") == item_id):
                return i
        raise AssertionError(f"no {kind} for {item_id}: {self.types()}")


async def collect(connection: Any, log: EventLog, until: str, count: int = 1) -> None:
    """Read events into ``log`` until ``count`` events of type ``until`` have arrived."""
    seen = len(log.of(until))
    async for event in connection:
        log.events.append(event.model_dump(exclude_unset=True))
        log.times.append(time.monotonic())
        if event.type == until:
            seen += 1
            if seen >= count:
                return


async def drain(connection: Any, log: EventLog, quiet_s: float = 3.0) -> None:
    """Read events into ``log`` until every turn started is completed and none came for
    ``quiet_s`` seconds."""
    completed = f"{TRANSCRIPTION}.completed"
    while True:
        try:
            event = await asyncio.wait_for(connection.recv(), quiet_s)
        except TimeoutError:
            if len(log.of(completed)) >= len(log.of("input_audio_buffer.speech_started")):
                return
            continue
        log.events.append(event.model_dump(exclude_unset=True))
        log.times.append(time.monotonic())


async def send_paced(connection: Any, appends: list[str], seconds: float = APPEND_S) -> None:
    """Append one every ``seconds`` (real-time pace for 50 ms appends, as a microphone)."""
    started = time.monotonic()
    for i, audio in enumerate(appends):
        await connection.input_audio_buffer.append(audio=audio)
        await asyncio.sleep(max(0.0, started + (i + 1) * seconds - time.monotonic()))
