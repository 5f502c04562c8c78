"""The STT engine interface: one small synchronous hook set per engine.

Engines run inside the worker subprocess only. The servicer owns concurrency,
cancellation and conversion; an engine only loads a model and decodes audio.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from theo.manifest import EngineConfig
from theo.types import BatchResult, TranscribeParams


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
