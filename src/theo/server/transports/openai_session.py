"""OpenAI Realtime session objects <-> Theo session settings.

``session.update`` (current form: ``session.audio.input.*``) and
``transcription_session.update`` (beta form: ``input_audio_format``,
``input_audio_transcription``, ...) become one dict of :class:`SessionConfig` changes
plus, at most, a model name; the effective Theo configuration becomes the session object
of ``session.created``/``session.updated`` in either form. A field Theo cannot honour
raises :class:`OpenAIParamError` naming it by its OpenAI path; nothing is accepted and
ignored (see README, "OpenAI Realtime compatibility", for the mapping table).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from theo.session.config import G711_SAMPLE_RATE, SessionConfig
from theo.vad.sensitivity import thresholds_for

OPENAI_PCM_RATE = 24_000
"""OpenAI's PCM input rate; other rates (8-48 kHz) are a Theo extension."""

_FORMATS = {"audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
_BETA_FORMATS = {"g711_ulaw": "g711_ulaw", "g711_alaw": "g711_alaw"}
_NOISE_TYPES = ("near_field", "far_field")
_TURN_KEYS = frozenset(
    {
        "type",
        "threshold",
        "prefix_padding_ms",
        "silence_duration_ms",
        "create_response",
        "interrupt_response",
        "idle_timeout_ms",
    }
)


class Dialect(enum.StrEnum):
    """Which shapes of OpenAI's protocol a client speaks."""

    CURRENT = "current"
    """The GA Realtime API: ``session.update`` with ``session.type: transcription``."""
    BETA = "beta"
    """The beta API (``OpenAI-Beta: realtime=v1``): ``transcription_session.update``."""


class OpenAIParamError(Exception):
    """A session field that is invalid, or one Theo cannot honour.

    Args:
        code: OpenAI-style error code (``invalid_type``, ``invalid_value``,
            ``unknown_parameter``, ``unsupported_value``).
        message: what is wrong, for a person.
        param: the field's path, e.g. ``session.audio.input.turn_detection.type``.
    """

    def __init__(self, code: str, message: str, param: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


@dataclass
class SessionUpdate:
    """What one update asks of the session."""

    changes: dict[str, Any] = field(default_factory=dict)
    """:class:`SessionConfig` fields to change."""
    model: str | None = None
    """The transcription model asked for (an OpenAI or a Theo name), if any."""
    noise_type: str | None = None
    """``near_field`` or ``far_field`` when noise reduction was switched on."""


def parse_update(session: Any, dialect: Dialect) -> SessionUpdate:
    """The Theo changes one update's ``session`` object asks for.

    The form is the one the object is written in: ``type``/``audio`` keys mean the
    current form, anything else the beta form (clients of both send ``session.update``).

    Raises:
        OpenAIParamError: a field of the wrong type, unknown, or one Theo cannot honour.
    """
    if not isinstance(session, Mapping):
        raise OpenAIParamError("invalid_type", "'session' must be an object.", "session")
    if "type" in session or "audio" in session or dialect is Dialect.CURRENT:
        return _parse_current(session)
    return _parse_beta(session)


def _parse_current(session: Mapping[str, Any]) -> SessionUpdate:
    update = SessionUpdate()
    _only(session, {"type", "audio", "include", "object", "id"}, "session")
    kind = session.get("type", "transcription")
    if kind != "transcription":
        raise OpenAIParamError(
            "unsupported_value",
            f"Theo serves transcription sessions only; session.type '{kind}' is not one.",
            "session.type",
        )
    _include(session, "session.include")
    audio = _object(session, "audio", "session.audio")
    if audio is None:
        return update
    _only(audio, {"input"}, "session.audio")
    audio_in = _object(audio, "input", "session.audio.input")
    if audio_in is None:
        return update
    where = "session.audio.input"
    _only(audio_in, {"format", "transcription", "turn_detection", "noise_reduction"}, where)
    if "format" in audio_in:
        update.changes.update(_format(audio_in["format"], f"{where}.format"))
    if "transcription" in audio_in:
        _transcription(audio_in["transcription"], f"{where}.transcription", update)
    if "turn_detection" in audio_in:
        update.changes.update(_turns(audio_in["turn_detection"], f"{where}.turn_detection"))
    if "noise_reduction" in audio_in:
        _noise(audio_in["noise_reduction"], f"{where}.noise_reduction", update)
    return update


def _parse_beta(session: Mapping[str, Any]) -> SessionUpdate:
    update = SessionUpdate()
    known = {
        "input_audio_format",
        "input_audio_transcription",
        "turn_detection",
        "input_audio_noise_reduction",
        "include",
        "modalities",
    }
    _only(session, known, "session")
    _include(session, "session.include")
    if "modalities" in session:
        modalities = session["modalities"]
        if not isinstance(modalities, list) or not set(modalities) <= {"text", "audio"}:
            raise OpenAIParamError(
                "invalid_value", "modalities are 'text' and 'audio'.", "session.modalities"
            )
    if "input_audio_format" in session:
        value = session["input_audio_format"]
        if value == "pcm16":
            update.changes.update(input_audio_format="pcm16", input_sample_rate=OPENAI_PCM_RATE)
        elif value in _BETA_FORMATS:
            update.changes.update(
                input_audio_format=_BETA_FORMATS[value], input_sample_rate=G711_SAMPLE_RATE
            )
        else:
            raise OpenAIParamError(
                "invalid_value",
                "input_audio_format is one of 'pcm16', 'g711_ulaw', 'g711_alaw'.",
                "session.input_audio_format",
            )
    if "input_audio_transcription" in session:
        _transcription(
            session["input_audio_transcription"], "session.input_audio_transcription", update
        )
    if "turn_detection" in session:
        update.changes.update(_turns(session["turn_detection"], "session.turn_detection"))
    if "input_audio_noise_reduction" in session:
        _noise(
            session["input_audio_noise_reduction"], "session.input_audio_noise_reduction", update
        )
    return update


def _format(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise OpenAIParamError("invalid_type", f"'{where}' must be an object.", where)
    _only(value, {"type", "rate"}, where)
    kind = value.get("type", "audio/pcm")
    if kind in _FORMATS:
        if value.get("rate") not in (None, G711_SAMPLE_RATE):
            raise OpenAIParamError("invalid_value", "G.711 audio is 8000 Hz.", f"{where}.rate")
        return {"input_audio_format": _FORMATS[kind], "input_sample_rate": G711_SAMPLE_RATE}
    if kind != "audio/pcm":
        raise OpenAIParamError(
            "invalid_value",
            f"Unsupported format '{kind}': use 'audio/pcm', 'audio/pcmu' or 'audio/pcma'.",
            f"{where}.type",
        )
    rate = value.get("rate", OPENAI_PCM_RATE)
    if not isinstance(rate, int) or isinstance(rate, bool) or not 8_000 <= rate <= 48_000:
        raise OpenAIParamError(
            "invalid_value",
            "rate is 24000 (OpenAI's), or 8000-48000 Hz as a Theo extension.",
            f"{where}.rate",
        )
    return {"input_audio_format": "pcm16", "input_sample_rate": rate}


def _transcription(value: Any, where: str, update: SessionUpdate) -> None:
    if value is None:
        raise OpenAIParamError(
            "unsupported_value",
            "A Theo transcription session always transcribes; it cannot be set to null.",
            where,
        )
    if not isinstance(value, Mapping):
        raise OpenAIParamError("invalid_type", f"'{where}' must be an object.", where)
    _only(value, {"model", "language", "prompt", "keywords", "languages", "delay"}, where)
    if value.get("delay") is not None:
        raise OpenAIParamError(
            "unsupported_value", "Theo has no transcription delay setting.", f"{where}.delay"
        )
    model = value.get("model")
    if model is not None:
        if not isinstance(model, str):
            raise OpenAIParamError("invalid_type", "'model' must be a string.", f"{where}.model")
        update.model = model
    if "language" in value:
        update.changes["language"] = value["language"]
    languages = value.get("languages")
    if languages is not None:
        if not isinstance(languages, list) or len(languages) > 1:
            raise OpenAIParamError(
                "unsupported_value",
                "Theo takes one language (or none, to detect it); use 'language'.",
                f"{where}.languages",
            )
        update.changes["language"] = languages[0] if languages else None
    if "prompt" in value:
        update.changes["prompt"] = value["prompt"]
    if "keywords" in value:
        update.changes["hot_words"] = value["keywords"] or []


def _turns(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {"turn_detection": "manual"}
    if not isinstance(value, Mapping):
        raise OpenAIParamError("invalid_type", f"'{where}' must be an object or null.", where)
    _only(value, _TURN_KEYS | {"eagerness"}, where)
    kind = value.get("type", "server_vad")
    if kind != "server_vad":
        raise OpenAIParamError(
            "unsupported_value",
            f"Turn detection '{kind}' is not available: use 'server_vad', or null to commit.",
            f"{where}.type",
        )
    if value.get("idle_timeout_ms") is not None or value.get("eagerness") is not None:
        param = "idle_timeout_ms" if value.get("idle_timeout_ms") is not None else "eagerness"
        raise OpenAIParamError(
            "unsupported_value", f"Theo's server VAD has no '{param}'.", f"{where}.{param}"
        )
    for flag in ("create_response", "interrupt_response"):
        if flag in value and not isinstance(value[flag], bool | None):
            raise OpenAIParamError(
                "invalid_type", f"'{flag}' must be a boolean.", f"{where}.{flag}"
            )
    # Absent numbers take Theo's defaults: a turn_detection object replaces the last one.
    defaults = SessionConfig()
    changes: dict[str, Any] = {
        "turn_detection": "vad",
        "vad_threshold": value.get("threshold"),
        "vad_prefix_padding_ms": value.get("prefix_padding_ms", defaults.vad_prefix_padding_ms),
        "vad_silence_ms": value.get("silence_duration_ms", defaults.vad_silence_ms),
    }
    if isinstance(changes["vad_threshold"], int) and not isinstance(changes["vad_threshold"], bool):
        changes["vad_threshold"] = float(changes["vad_threshold"])
    return changes


def _noise(value: Any, where: str, update: SessionUpdate) -> None:
    if value is None:
        update.changes["preprocessing"] = {"denoise": "off"}
        return
    if not isinstance(value, Mapping):
        raise OpenAIParamError("invalid_type", f"'{where}' must be an object or null.", where)
    _only(value, {"type", "strength"}, where)
    if value.get("strength") not in (None, 1, 1.0):
        raise OpenAIParamError(
            "unsupported_value", "Theo's denoiser has one strength (1).", f"{where}.strength"
        )
    kind = value.get("type", "near_field")
    if kind not in _NOISE_TYPES:
        raise OpenAIParamError(
            "invalid_value", "type is 'near_field' or 'far_field'.", f"{where}.type"
        )
    update.noise_type = kind
    update.changes["preprocessing"] = {"denoise": "on"}


def _include(session: Mapping[str, Any], where: str) -> None:
    include = session.get("include")
    if include:
        raise OpenAIParamError(
            "unsupported_value", "Theo includes nothing extra (no logprobs).", where
        )


def _object(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any] | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise OpenAIParamError("invalid_type", f"'{where}' must be an object.", where)
    return value


def _only(value: Mapping[str, Any], known: set[str] | frozenset[str], where: str) -> None:
    for key in value:
        if key not in known:
            raise OpenAIParamError(
                "unknown_parameter", f"Unknown parameter: '{where}.{key}'.", f"{where}.{key}"
            )


# ---------------------------------------------------------------------- the session object


def session_object(
    session_id: str,
    model: str,
    config: SessionConfig,
    dialect: Dialect,
    noise_type: str | None,
) -> dict[str, Any]:
    """The effective session, as ``session.created``/``session.updated`` carry it."""
    transcription = {"model": model, "language": config.language, "prompt": config.prompt or ""}
    turns = _turn_object(config)
    noise = _noise_object(config, noise_type)
    if dialect is Dialect.BETA:
        return {
            "id": session_id,
            "object": "realtime.transcription_session",
            "modalities": ["text"],
            "input_audio_format": _beta_format(config),
            "input_audio_transcription": transcription,
            "turn_detection": turns,
            "input_audio_noise_reduction": noise,
            "include": [],
        }
    return {
        "type": "transcription",
        "id": session_id,
        "object": "realtime.transcription_session",
        "audio": {
            "input": {
                "format": _format_object(config),
                "transcription": {**transcription, "keywords": list(config.hot_words)},
                "turn_detection": turns,
                "noise_reduction": noise,
            }
        },
        "include": [],
    }


def _format_object(config: SessionConfig) -> dict[str, Any]:
    if config.input_audio_format == "g711_ulaw":
        return {"type": "audio/pcmu"}
    if config.input_audio_format == "g711_alaw":
        return {"type": "audio/pcma"}
    return {"type": "audio/pcm", "rate": config.input_sample_rate}


def _beta_format(config: SessionConfig) -> str:
    return config.input_audio_format


def _turn_object(config: SessionConfig) -> dict[str, Any] | None:
    if config.turn_detection == "manual":
        return None
    threshold = config.vad_threshold
    if threshold is None:
        threshold = thresholds_for(config.vad_sensitivity).speech_prob
    return {
        "type": "server_vad",
        "threshold": threshold,
        "prefix_padding_ms": config.vad_prefix_padding_ms,
        "silence_duration_ms": config.vad_silence_ms,
    }


def _noise_object(config: SessionConfig, noise_type: str | None) -> dict[str, Any] | None:
    if config.preprocessing.denoise == "on":
        return {"type": noise_type or "near_field"}
    return None
