from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkerStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKER_STATUS_LOADING: _ClassVar[WorkerStatus]
    WORKER_STATUS_READY: _ClassVar[WorkerStatus]
    WORKER_STATUS_BUSY: _ClassVar[WorkerStatus]
    WORKER_STATUS_ERROR: _ClassVar[WorkerStatus]
WORKER_STATUS_LOADING: WorkerStatus
WORKER_STATUS_READY: WorkerStatus
WORKER_STATUS_BUSY: WorkerStatus
WORKER_STATUS_ERROR: WorkerStatus

class SynthesizeRequest(_message.Message):
    __slots__ = ("request_id", "text", "voice", "speed", "language")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    text: str
    voice: str
    speed: float
    language: str
    def __init__(self, request_id: _Optional[str] = ..., text: _Optional[str] = ..., voice: _Optional[str] = ..., speed: _Optional[float] = ..., language: _Optional[str] = ...) -> None: ...

class AudioChunk(_message.Message):
    __slots__ = ("audio_pcm16", "sample_rate", "index", "total", "text")
    AUDIO_PCM16_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    audio_pcm16: bytes
    sample_rate: int
    index: int
    total: int
    text: str
    def __init__(self, audio_pcm16: _Optional[bytes] = ..., sample_rate: _Optional[int] = ..., index: _Optional[int] = ..., total: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class ListVoicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Voice(_message.Message):
    __slots__ = ("id", "name", "language", "gender")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    GENDER_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    language: str
    gender: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., language: _Optional[str] = ..., gender: _Optional[str] = ...) -> None: ...

class ListVoicesResponse(_message.Message):
    __slots__ = ("voices", "default_voice", "languages", "sample_rate", "min_speed", "max_speed")
    VOICES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VOICE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    MIN_SPEED_FIELD_NUMBER: _ClassVar[int]
    MAX_SPEED_FIELD_NUMBER: _ClassVar[int]
    voices: _containers.RepeatedCompositeFieldContainer[Voice]
    default_voice: str
    languages: _containers.RepeatedScalarFieldContainer[str]
    sample_rate: int
    min_speed: float
    max_speed: float
    def __init__(self, voices: _Optional[_Iterable[_Union[Voice, _Mapping]]] = ..., default_voice: _Optional[str] = ..., languages: _Optional[_Iterable[str]] = ..., sample_rate: _Optional[int] = ..., min_speed: _Optional[float] = ..., max_speed: _Optional[float] = ...) -> None: ...

class HealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthResponse(_message.Message):
    __slots__ = ("status", "model_name", "engine", "device", "active_requests", "error")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    status: WorkerStatus
    model_name: str
    engine: str
    device: str
    active_requests: int
    error: str
    def __init__(self, status: _Optional[_Union[WorkerStatus, str]] = ..., model_name: _Optional[str] = ..., engine: _Optional[str] = ..., device: _Optional[str] = ..., active_requests: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...
