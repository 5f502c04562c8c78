"""The configuration of one realtime session, and validated updates to it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from theo.errors import CapabilityError, InvalidRequestError
from theo.manifest import ModelManifest, PreprocessingConfig
from theo.postprocessing.limits import MAX_HOT_WORD_LENGTH, MAX_HOT_WORDS
from theo.session.state import SessionTimeouts

VADSensitivity = Literal["high", "normal", "low"]
TurnDetection = Literal["vad", "manual"]
InputAudioFormat = Literal["pcm16", "g711_ulaw", "g711_alaw"]
OutputAudioFormat = InputAudioFormat
G711_SAMPLE_RATE = 8_000
"""G.711 is telephone audio: 8 kHz, one byte per sample."""

_MIN_TIMEOUT_MS = 1_000
# Upper bounds keep one client from pinning a session (a WebSocket, a worker stream and a
# pre-allocated ring buffer) for a day: a session that hears nothing for 10 minutes at
# start, or an hour later, is abandoned; closing only waits for the client's close frame.
MAX_INIT_TIMEOUT_MS = 600_000
MAX_SILENCE_TIMEOUT_MS = 3_600_000
MAX_HOLD_TIMEOUT_MS = 3_600_000
MAX_CLOSING_TIMEOUT_MS = 60_000
MAX_TTS_MUTE_TAIL_MS = 2_000
MAX_PROMPT_CHARS = 1_000
# The segmenter keeps 2 s of audio: pre-roll cannot reach further back.
MAX_VAD_PREFIX_PADDING_MS = 1_000
MAX_VAD_SILENCE_MS = 10_000


class PreprocessingOverrides(BaseModel):
    """Preprocessing switches a client may change in ``session.configure``."""

    # Strict: JSON has real booleans; "yes" or 1 for a switch is a client bug to report.
    model_config = ConfigDict(extra="forbid", strict=True)

    denoise: Literal["auto", "on", "off"] | None = None
    dc_remove: bool | None = None
    gain_normalize: bool | None = None

    def apply_to(self, config: PreprocessingConfig) -> PreprocessingConfig:
        """``config`` with the set fields replaced."""
        return config.model_copy(update=self.model_dump(exclude_none=True))


class SessionConfig(BaseModel):
    """Everything a client can set; every field takes effect (none is accepted and ignored).

    Validation is strict: JSON carries real numbers and booleans, so ``"16000"``, ``16000.0``
    or ``"yes"`` are rejected rather than converted. The only conveniences are documented:
    ``hot_words`` as a comma-separated string, and ``language`` null or ``""`` for detection.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)

    language: str | None = None
    """ISO 639-1 code for the next segments; None lets the engine detect it."""
    vad_sensitivity: VADSensitivity = "normal"
    """Silero thresholds: high detects quieter speech, low ignores more noise."""
    vad_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    """Silero probability that starts speech, overriding the sensitivity's (a segment
    stays open down to 0.15 below it); None: the sensitivity's own."""
    vad_silence_ms: int = Field(default=300, ge=32, le=MAX_VAD_SILENCE_MS)
    """Silence that ends a segment."""
    vad_prefix_padding_ms: int = Field(default=200, ge=0, le=MAX_VAD_PREFIX_PADDING_MS)
    """Audio before the detected onset sent with a segment, so no first syllable is lost."""
    dictation: bool = True
    """Dictation-aware endpointing: while the open segment's words end inside something
    being dictated (digits, a number word, "CPF", "telefone", an amount awaiting its
    cents), it ends after ``dictation_silence_ms`` of silence instead of
    ``vad_silence_ms``, so a number dictated in groups lands in one final."""
    dictation_silence_ms: int = Field(default=1_500, ge=100, le=MAX_VAD_SILENCE_MS)
    """The silence that ends a segment whose words stop inside a dictated entity."""
    turn_detection: TurnDetection = "vad"
    """``vad``: the VAD opens and ends segments. ``manual``: audio opens a segment and only
    ``input_audio_buffer.commit`` ends it (push-to-talk)."""
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    """Text that guides the engine's style and vocabulary, as batch's ``prompt``."""
    hot_words: list[str] = Field(default_factory=list)
    """Domain words biased in the engine and corrected in finals (at most
    ``MAX_HOT_WORDS`` distinct words of ``MAX_HOT_WORD_LENGTH`` characters, as in batch)."""
    enable_partial_transcripts: bool = True
    """Whether ``transcript.partial`` events are sent."""
    unstable_partials: bool = False
    """Whether partials also carry ``unstable_text``: the newest pass's words beyond the
    agreed ``text``, shown sooner but open to change (a partial is then also sent when
    only they changed)."""
    enable_itn: bool = True
    """Whether finals are post-processed (ITN and entity formatting)."""
    input_sample_rate: int = Field(default=16_000, ge=8_000, le=48_000)
    """Sample rate of the audio frames the client sends."""
    input_audio_format: InputAudioFormat = "pcm16"
    """Encoding of the audio frames: PCM16 little-endian, or G.711 mu-law / A-law (8 kHz,
    one byte per sample; choosing one sets ``input_sample_rate`` to 8000 unless the same
    update sets it)."""
    preprocessing: PreprocessingOverrides = Field(default_factory=PreprocessingOverrides)
    """Overrides of the model's preprocessing defaults."""
    init_timeout_ms: int = Field(default=30_000, ge=_MIN_TIMEOUT_MS, le=MAX_INIT_TIMEOUT_MS)
    """INIT: a session that hears no speech this long after opening is closed."""
    silence_timeout_ms: int = Field(default=30_000, ge=_MIN_TIMEOUT_MS, le=MAX_SILENCE_TIMEOUT_MS)
    """SILENCE: this long without speech after a segment puts the session on HOLD."""
    hold_timeout_ms: int = Field(default=300_000, ge=_MIN_TIMEOUT_MS, le=MAX_HOLD_TIMEOUT_MS)
    """HOLD: this long on hold without speech closes the session."""
    closing_timeout_ms: int = Field(default=2_000, ge=_MIN_TIMEOUT_MS, le=MAX_CLOSING_TIMEOUT_MS)
    """CLOSING: after ``session.closed``, how long the server waits for the client to close."""
    tts_model: str | None = None
    """Text-to-speech model of ``tts.speak`` without a ``model``; None: the first ready
    one."""
    output_sample_rate: int | None = Field(default=None, ge=8_000, le=48_000)
    """Sample rate of the spoken audio sent to the client; None: ``input_sample_rate``
    (8000 with a G.711 ``output_audio_format``)."""
    output_audio_format: OutputAudioFormat = "pcm16"
    """Encoding of the spoken audio: PCM16 little-endian, or G.711 mu-law / A-law (8 kHz;
    choosing one sets ``output_sample_rate`` to 8000 unless the same update sets it)."""
    tts_mute: bool = True
    """Mute-on-speak: while the session's speech plays on the client, the audio it sends
    is replaced by silence, so the session never transcribes its own voice."""
    tts_mute_tail_ms: int = Field(default=200, ge=0, le=MAX_TTS_MUTE_TAIL_MS)
    """How long mute-on-speak lasts after the speech's playback should have ended."""
    barge_in: bool = False
    """Barge-in: the session keeps listening while it speaks (mute-on-speak is off), an
    echo guard removes its own voice coming back, and the caller speaking over it stops
    the speech (``tts.speaking_end`` reason ``barge_in``)."""

    @property
    def output_rate(self) -> int:
        """The sample rate spoken audio is sent at."""
        if self.output_audio_format != "pcm16":
            return G711_SAMPLE_RATE
        return self.output_sample_rate or self.input_sample_rate

    def timeouts(self) -> SessionTimeouts:
        """The per-state timeouts, in seconds, for the session's state machine."""
        return SessionTimeouts(
            init_s=self.init_timeout_ms / 1000,
            silence_s=self.silence_timeout_ms / 1000,
            hold_s=self.hold_timeout_ms / 1000,
            closing_s=self.closing_timeout_ms / 1000,
        )

    @model_validator(mode="after")
    def _g711_is_8khz(self) -> SessionConfig:
        if self.input_audio_format != "pcm16" and self.input_sample_rate != G711_SAMPLE_RATE:
            raise PydanticCustomError(
                "g711_rate",
                "G.711 audio is 8000 Hz; input_sample_rate must be 8000 with {format}",
                {"format": self.input_audio_format},
            )
        rate = self.output_sample_rate
        if self.output_audio_format != "pcm16" and rate not in (None, G711_SAMPLE_RATE):
            raise PydanticCustomError(
                "g711_output_rate",
                "G.711 audio is 8000 Hz; output_sample_rate must be 8000 with {format}",
                {"format": self.output_audio_format},
            )
        return self

    @field_validator("tts_model", "prompt")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        primary = value.replace("_", "-").split("-")[0].lower()
        if not primary.isalpha() or not primary.isascii() or not 2 <= len(primary) <= 3:
            raise ValueError("use an ISO 639-1 code such as 'en' or 'pt'")
        return primary

    @field_validator("hot_words", mode="before")
    @classmethod
    def _hot_words_string(cls, value: Any) -> Any:
        # The documented convenience, same as the batch form field: "PIX, TED".
        if isinstance(value, str):
            return [w.strip() for w in value.split(",") if w.strip()]
        return value

    @field_validator("hot_words")
    @classmethod
    def _hot_words_limits(cls, value: list[str]) -> list[str]:
        # Repeats are dropped before counting, as batch does, so the limit is on real words.
        words = list(dict.fromkeys(value))
        if len(words) > MAX_HOT_WORDS or any(len(w) > MAX_HOT_WORD_LENGTH for w in words):
            raise PydanticCustomError(
                "hot_words_limit",
                "at most {count} distinct words of at most {length} characters",
                {"count": MAX_HOT_WORDS, "length": MAX_HOT_WORD_LENGTH},
            )
        return words

    def updated(self, changes: Mapping[str, object]) -> SessionConfig:
        """A copy with ``changes`` applied, validated as a whole.

        Raises:
            InvalidRequestError: an unknown field or an invalid value, naming the field.
        """
        merged = self.model_dump()
        merged.update(changes)
        g711 = changes.get("input_audio_format") in ("g711_ulaw", "g711_alaw")
        if g711 and "input_sample_rate" not in changes:
            merged["input_sample_rate"] = G711_SAMPLE_RATE
        g711_out = changes.get("output_audio_format") in ("g711_ulaw", "g711_alaw")
        if g711_out and "output_sample_rate" not in changes:
            merged["output_sample_rate"] = G711_SAMPLE_RATE
        try:
            return SessionConfig.model_validate(merged)
        except ValidationError as exc:
            error = exc.errors()[0]
            # The field, not the list index: "hot_words", "preprocessing.denoise".
            field = ".".join(str(p) for p in error["loc"] if isinstance(p, str)) or None
            if error["type"] == "g711_rate":
                field = "input_sample_rate"
            elif error["type"] == "g711_output_rate":
                field = "output_sample_rate"
            reason = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
            raise InvalidRequestError(
                f"Invalid session setting '{field}': {reason}.", param=field
            ) from exc


def check_supported(config: SessionConfig, manifest: ModelManifest) -> None:
    """Refuse settings the model cannot honour, as the batch endpoints do.

    Only what the manifest declares is checked here (a language outside
    ``capabilities.languages``; an empty list accepts any code); the engine may still
    reject a code it does not know, which the session reports without ending.

    Raises:
        CapabilityError: the model cannot transcribe ``config.language`` (param ``language``).
    """
    languages = manifest.capabilities.languages
    if config.language and languages and config.language not in languages:
        raise CapabilityError(
            f"Model '{manifest.name}' supports only: {', '.join(languages)}.", param="language"
        )
