"""Core domain types shared by the server, scheduler and workers."""

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
class TranscribeParams:
    """Decoding options passed from the API through the scheduler to the engine."""

    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    word_timestamps: bool = False
    task: Task = Task.TRANSCRIBE
    hot_words: tuple[str, ...] = ()


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
