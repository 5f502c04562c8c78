"""Core domain types shared by the server, scheduler, workers and the wire contract."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

ENGINE_SAMPLE_RATE: Final = 16_000
"""The rate every engine and the VAD receive (mono PCM16 on the wire)."""


class ModelType(enum.StrEnum):
    """What a model does."""

    STT = "stt"
    TTS = "tts"


class STTArchitecture(enum.StrEnum):
    """How an STT engine produces text; streaming strategies branch on this as data."""

    ENCODER_DECODER = "encoder-decoder"
    CTC = "ctc"
    STREAMING_NATIVE = "streaming-native"


class Task(enum.StrEnum):
    """Batch task: keep the spoken language or translate to English."""

    TRANSCRIBE = "transcribe"
    TRANSLATE = "translate"


class ResponseFormat(enum.StrEnum):
    """Output formats of the OpenAI transcription contract."""

    JSON = "json"
    VERBOSE_JSON = "verbose_json"
    TEXT = "text"
    SRT = "srt"
    VTT = "vtt"


class WorkerState(enum.StrEnum):
    """Lifecycle of a worker subprocess as seen by the manager."""

    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    CRASHED = "crashed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Word:
    """A recognised word with its time span in seconds."""

    word: str
    start: float
    end: float
    probability: float = 0.0


@dataclass(frozen=True, slots=True)
class Segment:
    """A recognised segment with decoder statistics (OpenAI verbose_json fields)."""

    id: int
    start: float
    end: float
    text: str
    seek: int = 0
    tokens: tuple[int, ...] = ()
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Everything a batch transcription or translation returns."""

    text: str
    language: str
    duration: float
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True, slots=True)
class DecodedSegment:
    """One segment of a batch transcription, sent as soon as the engine decoded it."""

    segment: Segment
    language: str
    """The clip's language (``en`` for a translation)."""


@dataclass(frozen=True, slots=True)
class TranscribeParams:
    """Decoding options passed from the API through the scheduler to the engine."""

    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    word_timestamps: bool = False
    task: Task = Task.TRANSCRIBE
    hot_words: tuple[str, ...] = ()
    coarse_segments: bool = False
    """The caller reads only the text (``json`` or ``text``, not streamed): the engine may
    decode long audio several windows at a time, with segments up to 30 s long."""


@dataclass(frozen=True, slots=True)
class TranscribeRequest:
    """A batch request ready for the scheduler: 16 kHz mono PCM16 audio plus options."""

    model: str
    audio_pcm16: bytes
    params: TranscribeParams = field(default_factory=TranscribeParams)
    request_id: str = ""


class TranscriptKind(enum.StrEnum):
    """Whether a streaming transcript may still grow or is the segment's last word."""

    PARTIAL = "partial"
    FINAL = "final"
    TENTATIVE = "tentative"
    """While the speaker pauses, the words as the latest full decode reads them: not
    append-only, never shown to clients; the session times the segment's end with it."""


@dataclass(frozen=True, slots=True)
class StreamTranscript:
    """A partial or final transcript of one streaming segment, times relative to its audio."""

    kind: TranscriptKind
    segment_id: int
    text: str
    start_ms: int = 0
    end_ms: int = 0
    language: str = ""
    confidence: float = 0.0
    words: tuple[Word, ...] = ()
    unstable_text: str = ""
    """Partials: the newest pass's words after ``text``, not agreed yet (may change)."""


@dataclass(frozen=True, slots=True)
class StreamAudio:
    """Audio of the current segment sent to a worker stream, with its segment settings."""

    segment_id: int
    audio_pcm16: bytes
    is_last: bool = False
    language: str | None = None
    prompt: str | None = None
    hot_words: tuple[str, ...] = ()
    enable_partials: bool = True
    speaker_paused: bool = False


class HealthStatus(enum.StrEnum):
    """What a worker says about itself when asked (its Health answer)."""

    LOADING = "loading"
    READY = "ready"
    BUSY = "busy"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class WorkerHealth:
    """A worker's answer to a Health probe, whatever its kind."""

    status: HealthStatus
    device: str = ""
    compute_type: str = ""
    error: str = ""
    """Why the model could not be loaded (status ERROR)."""
    model_name: str = ""
    engine: str = ""
    active_requests: int = 0
    scheduler: SchedulerStats | None = None
    """How an STT worker shared its engine between realtime and batch work."""


@dataclass(frozen=True, slots=True)
class SchedulerStats:
    """An STT worker's scheduling since it started (totals) and now (queues)."""

    realtime_queued: int = 0
    """Realtime decodes (partial passes, finals) queued or running."""
    batch_queued: int = 0
    """Batch requests waiting for the batch thread."""
    batch_calls_waited: int = 0
    """Batch engine calls that waited for realtime work."""
    batch_calls_aged: int = 0
    """Batch engine calls that ran beside pending realtime work after the longest wait."""
    batch_wait_seconds: float = 0.0
    """Total time batch engine calls waited for realtime work."""
    cancels: int = 0
    """Cancelled batch decodes that have stopped."""
    cancel_latency_seconds: float = 0.0
    """Total time from those cancellations to the engine stopping."""
    pass_calls: int = 0
    """Engine calls made for streams' partial passes."""
    pass_decodes: int = 0
    """Partial passes those calls decoded (more than the calls when batched)."""
    largest_pass_batch: int = 0
    """The most partial passes one engine call decoded."""
    engine_lanes: int = 0
    """Engine calls the worker runs at once (see ``THEO_SCHEDULER__ENGINE_LANES``)."""
    most_realtime_running: int = 0
    """The most realtime decodes that ran at once (up to ``engine_lanes``)."""


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    """One text to speak with a model's voice."""

    model: str
    text: str
    voice: str = ""
    """Voice id; empty means the model's default voice."""
    language: str = ""
    """Language code such as ``pt-br``; empty means the voice's own."""
    speed: float = 1.0
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class SpeechChunk:
    """The audio of one piece of the text: mono PCM16 LE."""

    pcm16: bytes
    sample_rate: int
    index: int
    total: int
    text: str = ""
    """The piece of text this audio speaks."""

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return len(self.pcm16) / 2 / self.sample_rate


@dataclass(frozen=True, slots=True)
class Voice:
    """One voice a text-to-speech model can speak with."""

    id: str
    """What requests pass as ``voice``."""
    name: str
    """Human-readable name."""
    language: str
    """The voice's own language, e.g. ``en-us`` or ``ja``."""
    gender: str = ""
    """``female``, ``male``, or empty when unknown."""


@dataclass(frozen=True, slots=True)
class VoiceCatalog:
    """What a TTS model offers: voices, languages, sample rate and speed range."""

    model: str
    voices: tuple[Voice, ...]
    default_voice: str
    languages: tuple[str, ...]
    sample_rate: int
    min_speed: float
    max_speed: float
