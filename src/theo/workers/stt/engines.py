"""Engine selection by name; engine modules are imported only when chosen."""

from __future__ import annotations

from theo.workers.stt.backend import STTBackend


def create_backend(engine: str) -> STTBackend:
    """Instantiate the backend for an engine name from a manifest.

    Raises:
        ValueError: the engine is unknown.
    """
    if engine == "faster-whisper":
        from theo.workers.stt.faster_whisper_backend import (  # noqa: PLC0415 - lazy by design
            FasterWhisperBackend,
        )

        return FasterWhisperBackend()
    raise ValueError(f"unknown STT engine '{engine}'")
