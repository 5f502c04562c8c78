"""What a client asks a session to say (``tts.speak``), validated before it is queued."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from theo.errors import InvalidRequestError
from theo.speech_text import MAX_SPEECH_CHARS, check_speakable

MIN_SPEED = 0.25
MAX_SPEED = 4.0
_MAX_REQUEST_ID_CHARS = 128


class SpeakRequest(BaseModel):
    """One reply to speak; fields as in ``POST /v1/audio/speech`` (``text`` for ``input``).

    Strict like the session configuration: JSON carries real strings and numbers.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    text: str = Field(min_length=1, max_length=MAX_SPEECH_CHARS)
    """What to say."""
    model: str | None = None
    """A text-to-speech model; None: the session's ``tts_model``, else the first ready one."""
    voice: str = ""
    """A voice of the model; empty: its default voice."""
    language: str = ""
    """Language of the text (``pt-br``, ``en-us``); empty: the voice's own."""
    speed: float = Field(default=1.0, ge=MIN_SPEED, le=MAX_SPEED)
    """Pace multiplier; the model may accept a narrower range."""
    request_id: str = Field(
        default_factory=lambda: f"tts_{uuid.uuid4().hex[:16]}",
        min_length=1,
        max_length=_MAX_REQUEST_ID_CHARS,
    )
    """Names the reply in its events and in ``tts.cancel``; generated when absent."""

    @field_validator("text")
    @classmethod
    def _speakable(cls, value: str) -> str:
        check_speakable(value)
        if not value.strip():
            raise ValueError("the text is blank")
        return value

    @classmethod
    def parse(cls, fields: Mapping[str, object]) -> SpeakRequest:
        """Validate a ``tts.speak`` command's fields.

        Raises:
            InvalidRequestError: an unknown field or an invalid value, naming the field.
        """
        try:
            return cls.model_validate(dict(fields))
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"]) or None
            reason = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
            message = f"Invalid tts.speak field '{field}': {reason}."
            raise InvalidRequestError(message, param=field) from exc
