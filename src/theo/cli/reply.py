"""``theo transcribe --stream --reply echo``: the session speaks back what it heard.

A way for a person to try full duplex: each final is sent back as ``tts.speak`` and the
reply's audio is played on the speakers (microphone mode, when ``sounddevice`` is
installed) or written to a WAV file (``--reply-audio``).
"""

from __future__ import annotations

import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

REPLY_MODES = ("echo",)
"""What ``--reply`` can do: ``echo`` speaks each final back."""


class ReplySink(Protocol):
    """Where the reply audio (PCM16 mono at the session's rate) goes."""

    def write(self, pcm16: bytes) -> None:
        """Take the next piece of reply audio."""

    @property
    def busy(self) -> bool:
        """Whether audio is still waiting to be played."""

    def close(self) -> None:
        """No more audio."""


@dataclass
class WavSink:
    """Writes the replies, back to back, to a WAV file."""

    path: Path
    sample_rate: int
    _file: wave.Wave_write | None = field(default=None, init=False)

    def write(self, pcm16: bytes) -> None:
        """Append ``pcm16`` to the file (opened at the first audio)."""
        if self._file is None:
            self._file = wave.open(str(self.path), "wb")  # noqa: SIM115 - closed in close()
            self._file.setnchannels(1)
            self._file.setsampwidth(2)
            self._file.setframerate(self.sample_rate)
        self._file.writeframes(pcm16)

    @property
    def busy(self) -> bool:
        """Never: a file takes the audio at once."""
        return False

    def close(self) -> None:
        """Finish the file."""
        if self._file is not None:
            self._file.close()
            self._file = None


class SpeakerSink:
    """Plays the replies on the default output device as they arrive (PortAudio's
    callback thread takes from a buffer; nothing here blocks the event loop)."""

    def __init__(self, sd: Any, sample_rate: int) -> None:
        self._buffer = bytearray()
        self._lock = threading.Lock()
        self._stream = sd.RawOutputStream(
            samplerate=sample_rate, channels=1, dtype="int16", callback=self._fill
        )
        self._stream.start()

    def write(self, pcm16: bytes) -> None:
        """Queue ``pcm16`` for playback."""
        with self._lock:
            self._buffer.extend(pcm16)

    @property
    def busy(self) -> bool:
        """Whether queued audio has not been played yet."""
        with self._lock:
            return bool(self._buffer)

    def close(self) -> None:
        """Stop playing."""
        self._stream.stop()
        self._stream.close()

    def _fill(self, out: Any, frames: int, when: Any, status: Any) -> None:
        wanted = frames * 2
        with self._lock:
            chunk = bytes(self._buffer[:wanted])
            del self._buffer[:wanted]
        out[:] = chunk + bytes(wanted - len(chunk))


@dataclass
class EchoBot:
    """Answers each final by speaking its text; tracks the replies still in flight."""

    pending: dict[str, str] = field(default_factory=dict)
    """Request id -> text of the replies not yet ended."""
    last_activity: float = field(default_factory=time.monotonic)
    """When the last final was answered or reply ended (monotonic)."""
    _count: int = 0

    def answer(self, final_text: str) -> dict[str, Any] | None:
        """The ``tts.speak`` command answering a final, or None for an empty one."""
        text = final_text.strip()
        if not text:
            return None
        self._count += 1
        self.last_activity = time.monotonic()
        request_id = f"echo_{self._count}"
        self.pending[request_id] = text
        return {"type": "tts.speak", "text": text, "request_id": request_id}

    def said(self, event: dict[str, Any]) -> str | None:
        """The text of a reply that starts (``tts.speaking_start``), to print."""
        return self.pending.get(str(event.get("request_id")))

    def ended(self, event: dict[str, Any]) -> None:
        """A reply ended (``tts.speaking_end``)."""
        self.pending.pop(str(event.get("request_id")), None)
        self.last_activity = time.monotonic()

    def idle_for(self, seconds: float) -> bool:
        """Whether no reply is in flight and nothing happened for ``seconds``."""
        return not self.pending and time.monotonic() - self.last_activity >= seconds
