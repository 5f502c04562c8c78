"""Engine selection by name; engine modules are imported only when chosen."""

from __future__ import annotations

from theo.workers.tts.backend import TTSBackend


def create_backend(engine: str) -> TTSBackend:
    """Instantiate the backend for an engine name from a manifest.

    Raises:
        ValueError: the engine is unknown.
    """
    if engine == "piper":
        from theo.workers.tts.piper_backend import PiperBackend  # noqa: PLC0415 - lazy by design

        return PiperBackend()
    if engine == "kokoro":
        from theo.workers.tts.kokoro_backend import KokoroBackend  # noqa: PLC0415 - lazy by design

        return KokoroBackend()
    raise ValueError(f"unknown TTS engine '{engine}'")
