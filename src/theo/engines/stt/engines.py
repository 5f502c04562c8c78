"""STT engine selection by name, through the plug-in registry."""

from __future__ import annotations

from typing import cast

from theo.engines.registry import create_engine
from theo.engines.stt.backend import STTBackend
from theo.types import ModelType


def create_backend(engine: str) -> STTBackend:
    """Instantiate the STT backend registered as ``engine`` (a manifest's ``engine``).

    Raises:
        UnknownEngineError: no installed package registers it.
    """
    return cast(STTBackend, create_engine(ModelType.STT, engine))
