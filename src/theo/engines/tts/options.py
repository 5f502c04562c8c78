"""Resolve a request's voice, language and speed against what the engine declares."""

from __future__ import annotations

from theo.engines.tts.backend import EngineInfo, SynthesisOptions


class UnsupportedParameterError(ValueError):
    """A request option the engine cannot honour (unknown voice or language, speed out of range)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


def normalize_language(code: str) -> str:
    """``pt_BR`` and ``PT-br`` both become ``pt-br``."""
    return code.strip().replace("_", "-").lower()


def resolve_language(info: EngineInfo, requested: str, voice_language: str) -> str:
    """The engine language for a request: exact code, else the first with the same base.

    With no language requested the voice's own language is used when the engine can
    speak it, else the engine's default.

    Raises:
        UnsupportedParameterError: the engine cannot speak the requested language.
    """
    code = normalize_language(requested)
    if not code:
        return voice_language if voice_language in info.languages else info.default_language
    if code in info.languages:
        return code
    base = code.split("-")[0]
    for language in info.languages:
        if language.split("-")[0] == base:
            return language
    raise UnsupportedParameterError(
        "language",
        f"Language '{requested}' is not supported by this model. "
        f"Supported: {', '.join(info.languages)}.",
    )


def resolve_options(
    info: EngineInfo, *, voice: str, language: str, speed: float
) -> SynthesisOptions:
    """Fill defaults and check every option of a request.

    Args:
        info: what the loaded engine can do.
        voice: a voice id; empty means the model's default voice.
        language: a language code; empty means the voice's (or the engine's default).
        speed: pace multiplier; 0 means 1.0.

    Raises:
        UnsupportedParameterError: an option the engine cannot honour, naming the field.
    """
    voice_id = voice or info.default_voice
    chosen = info.voice(voice_id)
    if chosen is None:
        raise UnsupportedParameterError(
            "voice",
            f"Unknown voice '{voice_id}' for this model. "
            f"Voices: {', '.join(v.id for v in info.voices)}.",
        )
    pace = speed or 1.0
    if not info.min_speed <= pace <= info.max_speed:
        raise UnsupportedParameterError(
            "speed",
            f"This model supports speed from {info.min_speed:g} to {info.max_speed:g}; "
            f"got {pace:g}.",
        )
    return SynthesisOptions(
        voice=voice_id, language=resolve_language(info, language, chosen.language), speed=pace
    )
