"""STT engine selection by name, through the plug-in registry."""

from __future__ import annotations

from typing import cast

from theo.types import ModelType
from theo.workers.engine_registry import create_engine
from theo.workers.stt.backend import STTBackend


def create_backend(engine: str) -> STTBackend:
    """Instantiate the STT backend registered as ``engine`` (a manifest's ``engine``).

    Raises:
        UnknownEngineError: no installed package registers it.
    """
    return cast(STTBackend, create_engine(ModelType.STT, engine))
