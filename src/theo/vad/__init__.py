"""Voice-activity detection for realtime sessions, run in the API process.

Each session builds its own :class:`VADDetector` (re-buffering, pre-filter state, Silero
recurrent state, debounced speech state); the ONNX model itself is loaded once per process
and shared, because its session holds no per-stream state. Nothing here imports an STT
engine: the Silero model file ships with Theo, in ``theo/vad/assets/``.
"""

from theo.vad.detector import EventKind, VADDetector, VADEvent, VADState
from theo.vad.energy import EnergyPreFilter, EnergyVerdict, SpectralFlatness, rms_dbfs
from theo.vad.sensitivity import (
    SENSITIVITIES,
    THRESHOLDS,
    Sensitivity,
    VADThresholds,
    is_sensitivity,
    thresholds_for,
)
from theo.vad.silero import (
    SAMPLE_RATE,
    WINDOW_SAMPLES,
    SileroClassifier,
    SileroModel,
    VADModelNotFoundError,
    default_model_path,
    shared_model,
)

__all__ = [
    "SAMPLE_RATE",
    "SENSITIVITIES",
    "THRESHOLDS",
    "WINDOW_SAMPLES",
    "EnergyPreFilter",
    "EnergyVerdict",
    "EventKind",
    "Sensitivity",
    "SileroClassifier",
    "SileroModel",
    "SpectralFlatness",
    "VADDetector",
    "VADEvent",
    "VADModelNotFoundError",
    "VADState",
    "VADThresholds",
    "default_model_path",
    "is_sensitivity",
    "rms_dbfs",
    "shared_model",
    "thresholds_for",
]
