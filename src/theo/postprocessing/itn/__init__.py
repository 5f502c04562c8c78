"""Inverse text normalization engines: built-in rules and NeMo grammars."""

from theo.postprocessing.itn.builtin import BuiltinITNEngine
from theo.postprocessing.itn.engine import (
    ITNEngine,
    ITNNotReadyError,
    ITNStage,
    ITNUnavailableError,
)
from theo.postprocessing.itn.nemo import NemoITNEngine, nemo_available
from theo.postprocessing.itn.select import BACKENDS, DeferredITNEngine, select_itn_engine

__all__ = [
    "BACKENDS",
    "BuiltinITNEngine",
    "DeferredITNEngine",
    "ITNEngine",
    "ITNNotReadyError",
    "ITNStage",
    "ITNUnavailableError",
    "NemoITNEngine",
    "nemo_available",
    "select_itn_engine",
]
