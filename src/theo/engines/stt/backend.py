"""The STT engine interface: one small synchronous hook set per engine.

Engines run inside the worker subprocess only. The servicer owns concurrency,
cancellation, conversion and validation against the engine's declared capabilities; an
engine declares what its loaded model can do as data (:class:`STTCapabilities`) and
decodes audio: whole clips for batch requests, and single speech segments for realtime
streams.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from theo.errors import InvalidRequestError
from theo.manifest import EngineConfig
from theo.types import BatchResult, Segment, Task, TranscribeParams, Word


class CancelledByClient(Exception):  # noqa: N818 - reads as an event, like asyncio.CancelledError
    """Raised inside an engine call when its cancel event is set."""


class BatchControl(threading.Event):
    """A batch request's cancel flag (``set()`` cancels it) and its turn at the engine.

    An engine makes each call into its runtime (an encoder pass, a generation, an
    alignment) inside :meth:`engine_call` (or calls :meth:`checkpoint` before it), so a
    cancelled request stops within one such call, and a batch request can give way to
    realtime work between its calls.
    """

    def __init__(
        self,
        wait_turn: Callable[[threading.Event], None] | None = None,
        hold: Callable[[], contextlib.AbstractContextManager[None]] | None = None,
    ) -> None:
        """``wait_turn(self)`` blocks until a batch call may run (or the request is
        cancelled); ``hold()`` is held during each engine call (a lane it occupies)."""
        super().__init__()
        self._wait_turn = wait_turn
        self._hold = hold
        self.created_at = time.monotonic()
        self.cancelled_at: float | None = None
        """``time.monotonic()`` of the first :meth:`set`."""
        self.first_call_at: float | None = None
        """``time.monotonic()`` when the first engine call got its turn."""

    def set(self) -> None:
        """Cancel the request; the engine stops at its next checkpoint."""
        if self.cancelled_at is None:
            self.cancelled_at = time.monotonic()
        super().set()

    def checkpoint(self) -> None:
        """Wait for the engine's turn; raise :class:`CancelledByClient` once cancelled."""
        if self._wait_turn is not None and not self.is_set():
            self._wait_turn(self)
        if self.is_set():
            raise CancelledByClient

    @contextlib.contextmanager
    def engine_call(self) -> Iterator[None]:
        """Wait for the turn of one engine call (see :meth:`checkpoint`) and hold it."""
        self.checkpoint()
        if self.first_call_at is None:
            self.first_call_at = time.monotonic()
        with self._hold() if self._hold is not None else contextlib.nullcontext():
            yield


class UnsupportedParameterError(InvalidRequestError):
    """A request option the engine cannot honour (e.g. an unknown language code)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message, param=param)
        self.param: str = param


@dataclass(frozen=True, slots=True)
class STTCapabilities:
    """What a loaded model can do; requests are checked against it before decoding."""

    streaming: bool = True
    """Serves realtime streams (``decode_segment``)."""
    native_partials: bool = False
    """Produces partial transcripts itself; otherwise they come from LocalAgreement passes."""
    word_timestamps: bool = True
    """Times each word of a batch transcript."""
    translation: bool = False
    """Translates speech to English text."""
    languages: tuple[str, ...] = ()
    """Every ISO 639-1 code a request may name; empty accepts any."""

    @property
    def english_only(self) -> bool:
        """Whether the model hears English only."""
        return self.languages == ("en",)

    def check_language(self, language: str | None) -> None:
        """Refuse a language the model cannot hear (``None``: detect, always allowed).

        Raises:
            UnsupportedParameterError: naming ``language``.
        """
        if language is None or not self.languages or language in self.languages:
            return
        if self.english_only:
            message = f"This model is English-only; language '{language}' is not supported."
        else:
            message = f"Unsupported language '{language}'."
        raise UnsupportedParameterError("language", message)

    def check_batch(self, params: TranscribeParams) -> None:
        """Refuse a batch request the model cannot serve.

        Raises:
            UnsupportedParameterError: naming the field (``language``, ``model`` for a
                translation, ``timestamp_granularities`` for word timestamps).
        """
        self.check_language(params.language)
        if params.task is Task.TRANSLATE and not self.translation:
            if self.english_only:
                message = "This model is English-only; it cannot translate."
            else:
                message = "This model cannot translate."
            raise UnsupportedParameterError("model", message)
        if params.word_timestamps and not self.word_timestamps:
            raise UnsupportedParameterError(
                "timestamp_granularities", "This model does not produce word timestamps."
            )

    def check_stream(self) -> None:
        """Refuse a realtime stream when the model cannot serve one.

        Raises:
            UnsupportedParameterError: naming ``model``.
        """
        if not self.streaming:
            raise UnsupportedParameterError("model", "This model cannot transcribe a stream.")


UNCHECKED = STTCapabilities(translation=True)
"""Capabilities that refuse nothing: every request reaches the engine, which may refuse it."""


@dataclass(frozen=True, slots=True)
class LoadedModelInfo:
    """What an engine reports once its model is loaded."""

    engine: str
    device: str
    compute_type: str
    capabilities: STTCapabilities = field(default_factory=lambda: UNCHECKED)
    """What the loaded model can do; an engine that declares nothing gets :data:`UNCHECKED`."""
    lanes: int = 1
    """Engine calls the loaded model can run at once (from separate threads)."""


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
    final: bool = False
    """The segment's final (or early final) decode: an engine may spend more on it."""
    translate: bool = False
    """Translate into English instead of transcribing (a batch transcript's parts)."""


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
        on_segment: Callable[[Segment, str], None] | None = None,
    ) -> BatchResult:
        """Decode 16 kHz mono float32 audio; raise :class:`CancelledByClient` when cancelled.

        ``cancel`` may be a :class:`BatchControl`: an engine then calls its ``checkpoint``
        before each runtime call, else it checks ``cancel`` as often as it can.

        ``on_segment`` (when given) is called with each segment and the clip's language as
        soon as the segment is decoded, from the decoding thread, before the whole result
        is returned.
        """
        ...

    def decode_segment(
        self, audio: npt.NDArray[np.float32], options: SegmentOptions
    ) -> SegmentDecode:
        """Decode one short speech segment with word timestamps, as fast as the options allow.

        Raises:
            UnsupportedParameterError: the language cannot be decoded by this model.
        """
        ...

    def decode_segments(
        self, passes: Sequence[tuple[npt.NDArray[np.float32], SegmentOptions]]
    ) -> list[SegmentDecode | Exception]:
        """Decode several streams' partial passes, in one engine call where the engine can
        batch them; each result (or the error of that pass) in the order given."""
        ...

    def tail_tokens(self, text: str, max_tokens: int) -> str:
        """The end of ``text`` that fits in ``max_tokens`` tokens of the model's tokenizer."""
        ...
