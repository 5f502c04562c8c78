from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Task(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_TRANSCRIBE: _ClassVar[Task]
    TASK_TRANSLATE: _ClassVar[Task]

class TranscriptEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSCRIPT_EVENT_TYPE_PARTIAL: _ClassVar[TranscriptEventType]
    TRANSCRIPT_EVENT_TYPE_FINAL: _ClassVar[TranscriptEventType]
    TRANSCRIPT_EVENT_TYPE_TENTATIVE: _ClassVar[TranscriptEventType]

class WorkerStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKER_STATUS_LOADING: _ClassVar[WorkerStatus]
    WORKER_STATUS_READY: _ClassVar[WorkerStatus]
    WORKER_STATUS_BUSY: _ClassVar[WorkerStatus]
    WORKER_STATUS_ERROR: _ClassVar[WorkerStatus]
TASK_TRANSCRIBE: Task
TASK_TRANSLATE: Task
TRANSCRIPT_EVENT_TYPE_PARTIAL: TranscriptEventType
TRANSCRIPT_EVENT_TYPE_FINAL: TranscriptEventType
TRANSCRIPT_EVENT_TYPE_TENTATIVE: TranscriptEventType
WORKER_STATUS_LOADING: WorkerStatus
WORKER_STATUS_READY: WorkerStatus
WORKER_STATUS_BUSY: WorkerStatus
WORKER_STATUS_ERROR: WorkerStatus

class TranscribeFileRequest(_message.Message):
    __slots__ = ("request_id", "audio_pcm16", "sample_rate", "language", "task", "initial_prompt", "temperature", "word_timestamps", "hot_words", "coarse_segments")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIO_PCM16_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    INITIAL_PROMPT_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    WORD_TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    HOT_WORDS_FIELD_NUMBER: _ClassVar[int]
    COARSE_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    audio_pcm16: bytes
    sample_rate: int
    language: str
    task: Task
    initial_prompt: str
    temperature: float
    word_timestamps: bool
    hot_words: _containers.RepeatedScalarFieldContainer[str]
    coarse_segments: bool
    def __init__(self, request_id: _Optional[str] = ..., audio_pcm16: _Optional[bytes] = ..., sample_rate: _Optional[int] = ..., language: _Optional[str] = ..., task: _Optional[_Union[Task, str]] = ..., initial_prompt: _Optional[str] = ..., temperature: _Optional[float] = ..., word_timestamps: _Optional[bool] = ..., hot_words: _Optional[_Iterable[str]] = ..., coarse_segments: _Optional[bool] = ...) -> None: ...

class Word(_message.Message):
    __slots__ = ("word", "start", "end", "probability")
    WORD_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    word: str
    start: float
    end: float
    probability: float
    def __init__(self, word: _Optional[str] = ..., start: _Optional[float] = ..., end: _Optional[float] = ..., probability: _Optional[float] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob", "words")
    ID_FIELD_NUMBER: _ClassVar[int]
    SEEK_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    AVG_LOGPROB_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_RATIO_FIELD_NUMBER: _ClassVar[int]
    NO_SPEECH_PROB_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: _containers.RepeatedScalarFieldContainer[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: _containers.RepeatedCompositeFieldContainer[Word]
    def __init__(self, id: _Optional[int] = ..., seek: _Optional[int] = ..., start: _Optional[float] = ..., end: _Optional[float] = ..., text: _Optional[str] = ..., tokens: _Optional[_Iterable[int]] = ..., temperature: _Optional[float] = ..., avg_logprob: _Optional[float] = ..., compression_ratio: _Optional[float] = ..., no_speech_prob: _Optional[float] = ..., words: _Optional[_Iterable[_Union[Word, _Mapping]]] = ...) -> None: ...

class TranscribeFileResponse(_message.Message):
    __slots__ = ("text", "language", "duration", "segments")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    text: str
    language: str
    duration: float
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    def __init__(self, text: _Optional[str] = ..., language: _Optional[str] = ..., duration: _Optional[float] = ..., segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ...) -> None: ...

class TranscribeFileEvent(_message.Message):
    __slots__ = ("segment", "result", "language")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    result: TranscribeFileResponse
    language: str
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ..., result: _Optional[_Union[TranscribeFileResponse, _Mapping]] = ..., language: _Optional[str] = ...) -> None: ...

class AudioFrame(_message.Message):
    __slots__ = ("session_id", "audio_pcm16", "is_last", "language", "initial_prompt", "hot_words", "segment_id", "enable_partials", "speaker_paused")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIO_PCM16_FIELD_NUMBER: _ClassVar[int]
    IS_LAST_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    INITIAL_PROMPT_FIELD_NUMBER: _ClassVar[int]
    HOT_WORDS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ENABLE_PARTIALS_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_PAUSED_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    audio_pcm16: bytes
    is_last: bool
    language: str
    initial_prompt: str
    hot_words: _containers.RepeatedScalarFieldContainer[str]
    segment_id: int
    enable_partials: bool
    speaker_paused: bool
    def __init__(self, session_id: _Optional[str] = ..., audio_pcm16: _Optional[bytes] = ..., is_last: _Optional[bool] = ..., language: _Optional[str] = ..., initial_prompt: _Optional[str] = ..., hot_words: _Optional[_Iterable[str]] = ..., segment_id: _Optional[int] = ..., enable_partials: _Optional[bool] = ..., speaker_paused: _Optional[bool] = ...) -> None: ...

class TranscriptEvent(_message.Message):
    __slots__ = ("session_id", "type", "text", "segment_id", "start_ms", "end_ms", "language", "confidence", "words", "unstable_text")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    END_MS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    UNSTABLE_TEXT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    type: TranscriptEventType
    text: str
    segment_id: int
    start_ms: int
    end_ms: int
    language: str
    confidence: float
    words: _containers.RepeatedCompositeFieldContainer[Word]
    unstable_text: str
    def __init__(self, session_id: _Optional[str] = ..., type: _Optional[_Union[TranscriptEventType, str]] = ..., text: _Optional[str] = ..., segment_id: _Optional[int] = ..., start_ms: _Optional[int] = ..., end_ms: _Optional[int] = ..., language: _Optional[str] = ..., confidence: _Optional[float] = ..., words: _Optional[_Iterable[_Union[Word, _Mapping]]] = ..., unstable_text: _Optional[str] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class CancelResponse(_message.Message):
    __slots__ = ("acknowledged",)
    ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    acknowledged: bool
    def __init__(self, acknowledged: _Optional[bool] = ...) -> None: ...

class HealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthResponse(_message.Message):
    __slots__ = ("status", "model_name", "engine", "device", "compute_type", "active_requests", "error", "scheduler")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TYPE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    status: WorkerStatus
    model_name: str
    engine: str
    device: str
    compute_type: str
    active_requests: int
    error: str
    scheduler: SchedulerStats
    def __init__(self, status: _Optional[_Union[WorkerStatus, str]] = ..., model_name: _Optional[str] = ..., engine: _Optional[str] = ..., device: _Optional[str] = ..., compute_type: _Optional[str] = ..., active_requests: _Optional[int] = ..., error: _Optional[str] = ..., scheduler: _Optional[_Union[SchedulerStats, _Mapping]] = ...) -> None: ...

class SchedulerStats(_message.Message):
    __slots__ = ("realtime_queued", "batch_queued", "batch_calls_waited", "batch_calls_aged", "batch_wait_seconds", "cancels", "cancel_latency_seconds", "pass_calls", "pass_decodes", "largest_pass_batch", "engine_lanes", "most_realtime_running")
    REALTIME_QUEUED_FIELD_NUMBER: _ClassVar[int]
    BATCH_QUEUED_FIELD_NUMBER: _ClassVar[int]
    BATCH_CALLS_WAITED_FIELD_NUMBER: _ClassVar[int]
    BATCH_CALLS_AGED_FIELD_NUMBER: _ClassVar[int]
    BATCH_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CANCELS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_LATENCY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PASS_CALLS_FIELD_NUMBER: _ClassVar[int]
    PASS_DECODES_FIELD_NUMBER: _ClassVar[int]
    LARGEST_PASS_BATCH_FIELD_NUMBER: _ClassVar[int]
    ENGINE_LANES_FIELD_NUMBER: _ClassVar[int]
    MOST_REALTIME_RUNNING_FIELD_NUMBER: _ClassVar[int]
    realtime_queued: int
    batch_queued: int
    batch_calls_waited: int
    batch_calls_aged: int
    batch_wait_seconds: float
    cancels: int
    cancel_latency_seconds: float
    pass_calls: int
    pass_decodes: int
    largest_pass_batch: int
    engine_lanes: int
    most_realtime_running: int
    def __init__(self, realtime_queued: _Optional[int] = ..., batch_queued: _Optional[int] = ..., batch_calls_waited: _Optional[int] = ..., batch_calls_aged: _Optional[int] = ..., batch_wait_seconds: _Optional[float] = ..., cancels: _Optional[int] = ..., cancel_latency_seconds: _Optional[float] = ..., pass_calls: _Optional[int] = ..., pass_decodes: _Optional[int] = ..., largest_pass_batch: _Optional[int] = ..., engine_lanes: _Optional[int] = ..., most_realtime_running: _Optional[int] = ...) -> None: ...
