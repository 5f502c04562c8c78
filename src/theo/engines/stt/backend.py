"""The STT engine interface: one small synchronous hook set per engine.

Engines run inside the worker subprocess only. The servicer owns concurrency,
cancellation and conversion; an engine only loads a model and decodes audio: whole
clips for batch requests, and single speech segments for realtime streams.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from theo.manifest import EngineConfig
from theo.types import BatchResult, TranscribeParams, Word


class CancelledByClient(Exception):  # noqa: N818 - reads as an event, like asyncio.CancelledError
    """Raised inside an engine call when its cancel event is set."""


class UnsupportedParameterError(ValueError):
    """A request option the engine cannot honour (e.g. an unknown language code)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


@dataclass(frozen=True, slots=True)
class LoadedModelInfo:
    """What an engine reports once its model is loaded."""

    engine: str
    device: str
    compute_type: str


@dataclass(frozen=True, slots=True)
class SegmentOptions:
    """Options of one decoding pass over a streaming speech segment."""

    language: str | None = None
    """ISO 639-1 code; ``None`` lets the engine detect it."""
    prompt: str | None = None
    """Preceding text (earlier finals, a caller prompt); the engine keeps what fits."""
    hot_words: tuple[str, ...] = ()
    """Words to bias the decoder towards; they always survive prompt truncation."""
    prefix: str | None = None
    """Text the transcript must start with (words a stream has already committed)."""
    beam_size: int | None = None
    """Beam width; ``None`` means the model's configured beam size."""


@dataclass(frozen=True, slots=True)
class SegmentDecode:
    """The transcript of one segment pass, with times relative to the audio given."""

    text: str
    words: tuple[Word, ...]
    language: str
    confidence: float
    """Probability in 0-1 that the transcript is right (mean word probability)."""


class STTBackend(Protocol):
    """A speech-to-text engine living inside a worker process."""

    engine_name: str

    def load(self, model_dir: Path, config: EngineConfig) -> LoadedModelInfo:
        """Load the model from a local directory (never from a hub id)."""
        ...

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        params: TranscribeParams,
        cancel: threading.Event,
    ) -> BatchResult:
        """Decode 16 kHz mono float32 audio; raise :class:`CancelledByClient` when cancelled."""
        ...

    def decode_segment(
        self, audio: npt.NDArray[np.float32], options: SegmentOptions
    ) -> SegmentDecode:
        """Decode one short speech segment with word timestamps, as fast as the options allow.

        Raises:
            UnsupportedParameterError: the language cannot be decoded by this model.
        """
        ...

    def tail_tokens(self, text: str, max_tokens: int) -> str:
        """The end of ``text`` that fits in ``max_tokens`` tokens of the model's tokenizer."""
        ...
