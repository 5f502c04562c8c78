"""TTS engine selection by name, through the plug-in registry."""

from __future__ import annotations

from typing import cast

from theo.engines.registry import create_engine
from theo.engines.tts.backend import TTSBackend
from theo.types import ModelType


def create_backend(engine: str) -> TTSBackend:
    """Instantiate the TTS backend registered as ``engine`` (a manifest's ``engine``).

    Raises:
        UnknownEngineError: no installed package registers it.
    """
    return cast(TTSBackend, create_engine(ModelType.TTS, engine))
