"""The configuration of one realtime session, and validated updates to it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from theo.errors import InvalidRequestError
from theo.manifest import PreprocessingConfig

VADSensitivity = Literal["high", "normal", "low"]


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
