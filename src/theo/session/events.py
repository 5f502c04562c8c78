"""What a realtime session tells its transport: one union of typed, immutable events.

The session core emits these and nothing else; a transport adapter (the WebSocket
protocol, and later the OpenAI Realtime protocol or a phone bridge) turns each into its
own wire form. Times are milliseconds of session audio; segment ids grow strictly, and a
segment's events (``SpeechStart``, ``TranscriptPartial``\\*, ``TranscriptFinal``,
``SpeechEnd``) are never interleaved with the next segment's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from theo.session.config import SessionConfig


class CloseReason(enum.StrEnum):
    """Why a session ended (``SessionClosed.reason``)."""

    CLIENT_CLOSE = "client_close"
    """The client asked to close: outstanding finals were sent first."""
    CANCELLED = "cancelled"
    """The client cancelled: the open segment was discarded."""
    INIT_TIMEOUT = "init_timeout"
    """No speech within ``init_timeout_ms`` of the start."""
    HOLD_TIMEOUT = "hold_timeout"
    """On hold longer than ``hold_timeout_ms``."""
    ERROR = "error"
    """The session failed (its worker did not come back)."""
    CALL_ENDED = "call_ended"
    """The phone call it transcribed ended: outstanding finals were sent first."""
    SLOW_CONSUMER = "slow_consumer"
    """The client stopped reading what the session sent (its send buffer stayed full)."""


class SpeakingEndReason(enum.StrEnum):
    """Why a spoken reply ended (``SpeakingEnded.reason``)."""

    DONE = "done"
    """All of its audio was sent."""
    CANCELLED = "cancelled"
    """``tts.cancel`` (or the session closing) stopped it."""
    BARGE_IN = "barge_in"
    """The caller spoke over it."""
    ERROR = "error"
    """The engine failed or refused it (an ``error`` event says why, just before)."""


@dataclass(frozen=True, slots=True)
class SessionCreated:
    """The session started, with its effective configuration."""

    session_id: str
    model: str
    config: SessionConfig


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    """A configure command took effect; ``config`` is the whole effective configuration."""

    config: SessionConfig


@dataclass(frozen=True, slots=True)
class SpeechStart:
    """Speech opened ``segment_id`` at ``timestamp_ms`` (the VAD's onset, or a commit)."""

    segment_id: int
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class SpeechEnd:
    """The VAD heard the speech of ``segment_id`` end (not sent for a commit)."""

    segment_id: int
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class SegmentEnded:
    """``segment_id`` stopped taking audio, by the VAD or a commit: its final follows.

    Sent at once, before the final (unlike ``SpeechEnd``, which follows it), for
    transports that report the end of a turn as it happens.
    """

    segment_id: int
    timestamp_ms: int
    """Where the speech ended (the VAD's) or the commit fell, in session time."""
    audio_ms: int
    """Audio the segment holds, pre-roll included."""
    by_vad: bool
    """True when the VAD heard the speech end; False for a commit."""


@dataclass(frozen=True, slots=True)
class InputCleared:
    """The uncommitted audio was discarded (``clear``); ``segment_id`` was open, if any,
    and none of its transcripts follow."""

    segment_id: int | None


@dataclass(frozen=True, slots=True)
class TranscriptPartial:
    """The words of an open segment two decodes agree on; append-only, never post-processed."""

    segment_id: int
    text: str
    timestamp_ms: int
    unstable_text: str | None = None
    """With ``unstable_partials``: the newest decode's words after ``text``, not agreed
    yet (they may change or go); None when the session does not report them."""


@dataclass(frozen=True, slots=True)
class FinalWord:
    """One word of a final, in session time."""

    word: str
    start_ms: int
    end_ms: int
    probability: float


@dataclass(frozen=True, slots=True)
class TranscriptFinal:
    """A segment's post-processed transcript; its last event but the ``SpeechEnd``."""

    segment_id: int
    text: str
    start_ms: int
    end_ms: int
    language: str
    confidence: float
    words: tuple[FinalWord, ...] = ()


@dataclass(frozen=True, slots=True)
class TranscriptCorrection:
    """An entity dictated across pauses longer than the dictation window was split over
    several finals: ``text`` is those segments' words post-processed together, to show in
    place of their finals (which stay as sent: the append-only promise holds).

    Sent right after the final of the last segment in ``segment_ids``; a later correction
    spanning more segments supersedes it.
    """

    segment_ids: tuple[int, ...]
    text: str
    language: str


@dataclass(frozen=True, slots=True)
class SessionHold:
    """No speech for ``silence_timeout_ms``: on hold until speech, or ``hold_timeout_ms``."""

    session_id: str
    timestamp_ms: int
    hold_timeout_ms: int


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Audio arrives faster than real time: the sender should pause about ``delay_ms``."""

    delay_ms: int
    message: str


@dataclass(frozen=True, slots=True)
class SessionLagging:
    """The session fell behind real time: a segment's final is ``lag_ms`` overdue.

    Sent once per segment, when the time since its end was decided (the VAD's silence or
    a commit) passes the server's ``lag_warning_s``; the final still comes.
    """

    segment_id: int
    lag_ms: int
    message: str


@dataclass(frozen=True, slots=True)
class FramesDropped:
    """Audio too far ahead of real time (or beyond a full ring buffer) was dropped."""

    dropped_ms: int
    """Dropped since the last report."""
    total_dropped_ms: int
    message: str


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """Something went wrong; built from a domain error by :mod:`theo.session.errors`."""

    code: str
    message: str
    recoverable: bool
    """Whether the session goes on (the offending input was dropped or is retried)."""
    param: str | None = None
    """The field at fault, when there is one."""
    resume_segment_id: int | None = None
    """For a worker crash: the first segment transcribed again."""
    request_id: str | None = None
    """For a spoken reply that failed: its ``request_id``."""


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """The session's last event: nothing follows it."""

    session_id: str
    reason: CloseReason


@dataclass(frozen=True, slots=True)
class SpeakingStarted:
    """A spoken reply started: its audio follows, as :class:`OutputAudio` events."""

    request_id: str
    model: str
    voice: str
    sample_rate: int
    format: str
    """``pcm16``, ``g711_ulaw`` or ``g711_alaw``: the session's ``output_audio_format``."""


@dataclass(frozen=True, slots=True)
class OutputAudio:
    """A piece of a spoken reply, in the session's output format and rate, for the
    transport to play to the caller."""

    request_id: str
    audio: bytes
    sample_rate: int
    format: str


@dataclass(frozen=True, slots=True)
class SpeakingEnded:
    """A spoken reply ended; every accepted ``tts.speak`` gets exactly one."""

    request_id: str
    reason: SpeakingEndReason
    duration_ms: int
    """Audio of the reply sent to the transport."""


SessionEvent = (
    SessionCreated
    | SessionUpdated
    | SpeechStart
    | SpeechEnd
    | SegmentEnded
    | InputCleared
    | TranscriptPartial
    | TranscriptFinal
    | TranscriptCorrection
    | SessionHold
    | RateLimit
    | SessionLagging
    | FramesDropped
    | ErrorEvent
    | SessionClosed
    | SpeakingStarted
    | OutputAudio
    | SpeakingEnded
)
"""Every event a session emits."""
