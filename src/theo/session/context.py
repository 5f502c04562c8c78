"""What a realtime session needs from the server, passed in explicitly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from theo.config import SessionSettings
from theo.manifest import ModelManifest
from theo.postprocessing.itn.engine import ITNEngine
from theo.workers.scheduler import Scheduler

if TYPE_CHECKING:
    from theo.session.speaker import Synthesizer


class SessionMetrics(Protocol):
    """What a session reports (implemented by :class:`theo.server.metrics.Metrics`)."""

    def stream_observation(self, name: str, value: float) -> None:
        """ttfb / final_delay (seconds), vad_start / vad_end (counts)."""

    def segment_force_committed(self, reason: str) -> None:
        """A segment was cut before the VAD ended it (``ring_buffer`` or ``client``)."""

    def worker_recovery(self, outcome: str) -> None:
        """A broken worker stream was ``recovered`` or ``failed`` to recover."""

    def final_confidence(self, model: str, confidence: float) -> None:
        """The confidence (0-1) of a non-empty final."""

    def speech_ended(self, reason: str) -> None:
        """A spoken reply ended (``done``, ``cancelled``, ``barge_in``, ``error``)."""

    def voice_to_voice(self, seconds: float) -> None:
        """Caller speech end to the first audio of the reply that answers it."""

    def dictation_extended(self) -> None:
        """A segment's end waited the dictation silence (its words ended in an entity)."""

    def muted_audio(self, seconds: float) -> None:
        """Incoming audio replaced by silence while the session's speech played."""

    def session_lagging(self) -> None:
        """A segment's final became ``lag_warning_s`` overdue (``session.lagging``)."""


@dataclass(frozen=True, slots=True)
class SessionContext:
    """The model, the routes to its workers and the server-wide limits of a session."""

    model_name: str
    manifest: ModelManifest
    scheduler: Scheduler
    itn_engine: ITNEngine | None
    metrics: SessionMetrics
    limits: SessionSettings
    synthesizer: Synthesizer | None = None
    """The server's text-to-speech side (``tts.speak``); None: the session cannot speak."""
