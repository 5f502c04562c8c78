"""The TTS engine interface: load a model, synthesize one piece of text. Nothing else.

Engines run inside the worker subprocess only, called from one inference thread. The
servicer owns text splitting, validation against the engine's declared capabilities,
pauses, streaming and cancellation; an engine declares what it can do as data
(:class:`EngineInfo`) and turns one short piece of text into audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from theo.manifest import EngineConfig
from theo.types import Voice, VoiceCatalog

VoiceInfo = Voice
"""One voice a model can speak with (the domain's :class:`~theo.types.Voice`)."""


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """What a loaded engine can do; requests are validated against it before synthesis."""

    engine: str
    device: str
    sample_rate: int
    voices: tuple[VoiceInfo, ...]
    default_voice: str
    languages: tuple[str, ...]
    """Every language code a request may ask for (lowercase, ``-`` separated)."""
    default_language: str
    """Used when neither the request nor the voice gives a supported language."""
    min_speed: float = 0.25
    max_speed: float = 4.0

    def voice(self, voice_id: str) -> VoiceInfo | None:
        """The voice called ``voice_id``, if the model has it."""
        return next((v for v in self.voices if v.id == voice_id), None)

    def catalog(self, model: str) -> VoiceCatalog:
        """What the model offers to requests, as ``ListVoices`` answers it."""
        return VoiceCatalog(
            model=model,
            voices=self.voices,
            default_voice=self.default_voice,
            languages=self.languages,
            sample_rate=self.sample_rate,
            min_speed=self.min_speed,
            max_speed=self.max_speed,
        )


@dataclass(frozen=True, slots=True)
class SynthesisOptions:
    """Resolved options of one synthesis: every field is valid for the engine."""

    voice: str
    language: str
    speed: float = 1.0


class TTSBackend(Protocol):
    """A text-to-speech engine living inside a worker process."""

    engine_name: str

    def load(self, model_dir: Path, config: EngineConfig) -> EngineInfo:
        """Load the model from a local directory and warm it up; report what it can do."""
        ...

    def synthesize(self, text: str, options: SynthesisOptions) -> npt.NDArray[np.float32]:
        """Speak one short piece of text: mono float32 samples in [-1, 1] at the model's rate.

        The result has no leading or trailing silence to speak of; the caller adds pauses.
        """
        ...
