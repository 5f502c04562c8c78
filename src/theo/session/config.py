"""The configuration of one realtime session, and validated updates to it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from theo.errors import InvalidRequestError
from theo.manifest import PreprocessingConfig
from theo.session.state import SessionTimeouts

VADSensitivity = Literal["high", "normal", "low"]

_MIN_TIMEOUT_MS = 1_000
_MAX_TIMEOUT_MS = 24 * 3_600_000


class PreprocessingOverrides(BaseModel):
    """Preprocessing switches a client may change in ``session.configure``."""

    model_config = ConfigDict(extra="forbid")

    denoise: Literal["auto", "on", "off"] | None = None
    dc_remove: bool | None = None
    gain_normalize: bool | None = None

    def apply_to(self, config: PreprocessingConfig) -> PreprocessingConfig:
        """``config`` with the set fields replaced."""
        return config.model_copy(update=self.model_dump(exclude_none=True))


class SessionConfig(BaseModel):
    """Everything a client can set; every field takes effect (none is accepted and ignored)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    language: str | None = None
    """ISO 639-1 code for the next segments; None lets the engine detect it."""
    vad_sensitivity: VADSensitivity = "normal"
    """Silero thresholds: high detects quieter speech, low ignores more noise."""
    hot_words: list[str] = Field(default_factory=list, max_length=100)
    """Domain words biased in the engine and corrected in finals."""
    enable_partial_transcripts: bool = True
    """Whether ``transcript.partial`` events are sent."""
    enable_itn: bool = True
    """Whether finals are post-processed (ITN and entity formatting)."""
    input_sample_rate: int = Field(default=16_000, ge=8_000, le=48_000)
    """Sample rate of the PCM16 frames the client sends."""
    preprocessing: PreprocessingOverrides = Field(default_factory=PreprocessingOverrides)
    """Overrides of the model's preprocessing defaults."""
    init_timeout_ms: int = Field(default=30_000, ge=_MIN_TIMEOUT_MS, le=_MAX_TIMEOUT_MS)
    """INIT: a session that hears no speech this long after opening is closed."""
    silence_timeout_ms: int = Field(default=30_000, ge=_MIN_TIMEOUT_MS, le=_MAX_TIMEOUT_MS)
    """SILENCE: this long without speech after a segment puts the session on HOLD."""
    hold_timeout_ms: int = Field(default=300_000, ge=_MIN_TIMEOUT_MS, le=_MAX_TIMEOUT_MS)
    """HOLD: this long on hold without speech closes the session."""
    closing_timeout_ms: int = Field(default=2_000, ge=_MIN_TIMEOUT_MS, le=_MAX_TIMEOUT_MS)
    """CLOSING: after ``session.closed``, how long the server waits for the client to close."""

    def timeouts(self) -> SessionTimeouts:
        """The per-state timeouts, in seconds, for the session's state machine."""
        return SessionTimeouts(
            init_s=self.init_timeout_ms / 1000,
            silence_s=self.silence_timeout_ms / 1000,
            hold_s=self.hold_timeout_ms / 1000,
            closing_s=self.closing_timeout_ms / 1000,
        )

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        primary = value.replace("_", "-").split("-")[0].lower()
        if not primary.isalpha() or not 2 <= len(primary) <= 3:
            raise ValueError("use an ISO 639-1 code such as 'en' or 'pt'")
        return primary

    @field_validator("hot_words", mode="before")
    @classmethod
    def _hot_words(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [w.strip() for w in value.split(",") if w.strip()]
        return value

    def updated(self, changes: dict[str, Any]) -> SessionConfig:
        """A copy with ``changes`` applied, validated as a whole.

        Raises:
            InvalidRequestError: an unknown field or an invalid value, naming the field.
        """
        merged = self.model_dump()
        merged.update(changes)
        try:
            return SessionConfig.model_validate(merged)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"]) or None
            reason = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
            raise InvalidRequestError(
                f"Invalid session.configure field '{field}': {reason}.", param=field
            ) from exc
