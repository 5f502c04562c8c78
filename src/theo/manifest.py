"""The ``theo.yaml`` model manifest: parsing and validation.

Every installed model directory holds one. Capabilities are data the server branches
on (e.g. whether a model can translate), never engine-specific ``isinstance`` checks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from theo.errors import ManifestError
from theo.types import ModelType, STTArchitecture

MANIFEST_FILENAME = "theo.yaml"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class Capabilities(BaseModel):
    """What a model can do, declared in its manifest."""

    model_config = ConfigDict(extra="forbid")

    languages: list[str] = Field(default_factory=list)
    """ISO 639-1 codes the model accepts; empty means any language the engine knows."""
    translation: bool = False
    """Whether ``task=translate`` (speech to English text) is supported."""
    word_timestamps: bool = True
    """Whether word-level timestamps can be produced."""
    streaming: bool = True
    """Whether the model can serve realtime sessions."""
    language_detection: bool = True
    """Whether the language can be detected when none is given."""


class EngineConfig(BaseModel):
    """Engine settings handed to the worker."""

    model_config = ConfigDict(extra="allow")

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto``: CUDA when available, otherwise CPU."""
    compute_type: str = "auto"
    """CTranslate2 compute type; ``auto`` means float16 on CUDA and int8 on CPU."""
    cpu_threads: int = Field(default=0, ge=0)
    """Intra-op threads on CPU; 0 lets the engine decide."""
    lanes: int = Field(default=0, ge=0, le=16)
    """Engine calls a worker runs at once (CTranslate2 replicas sharing one copy of the
    weights), each running with ``cpu_threads`` threads; 0 lets the worker decide
    (``THEO_SCHEDULER__ENGINE_LANES``, or 2 on a CPU with at least 2 cores, else 1)."""
    beam_size: int = Field(default=5, ge=1)
    """Beam width used for decoding."""
    vad_filter: bool = False
    """Whether the engine's own VAD filter drops silence before decoding."""


ENGINE_CONFIG_KEYS: dict[str, frozenset[str]] = {
    "faster-whisper": frozenset({"long_audio_batch"}),
    "piper": frozenset({"voice_genders"}),
    "kokoro": frozenset({"default_voice", "default_language"}),
}
"""Engine-specific ``engine_config`` keys each known engine reads, beyond the common ones
(device, compute_type, cpu_threads, lanes, beam_size, vad_filter). A key outside this set is a
typo or a setting the engine would silently ignore, so the manifest is rejected."""


NARROWBAND_MAX_RATE = 8_000
"""Input at this sample rate or below is telephone-band speech (G.711, AMR-NB, 8 kHz PCM)."""


class PreprocessingConfig(BaseModel):
    """Audio stages applied before the engine; per-model defaults, overridable per request."""

    model_config = ConfigDict(extra="forbid")

    dc_remove: bool = True
    """2nd-order Butterworth high-pass removing DC offset and rumble."""
    highpass_hz: float = Field(default=20.0, gt=0, lt=1000)
    """Cut-off of the DC-removal high-pass filter."""
    gain_normalize: bool = True
    """Normalize the engine's input to ``target_peak_dbfs`` (never applied ahead of VAD)."""
    target_peak_dbfs: float = Field(default=-3.0, le=0, ge=-40)
    """Peak level the gain stage aims for over ``gain_window_ms``."""
    gain_window_ms: int = Field(default=500, ge=20, le=10_000)
    """Window over which the gain stage measures the peak."""
    max_gain_db: float = Field(default=30.0, ge=0, le=60)
    """Largest amplification the gain stage applies (keeps silence from being blown up)."""
    denoise: Literal["auto", "on", "off"] = "off"
    """RNNoise denoising; ``auto`` turns it on for telephone-band (8 kHz) input only.

    Off by default: on real 8 kHz telephone speech it cost Whisper (tiny.en and base) 4 of
    92 words, and forced on at 16 kHz 4-7 words (``benchmarks/accuracy.py``). Whisper is
    trained on noisy audio; RNNoise's artefacts hurt it more than the noise does."""
    narrowband_gain_normalize: bool | None = None
    """``gain_normalize`` for telephone-band input (a sample rate of 8 kHz or less); None:
    as ``gain_normalize``. A request that sets ``gain_normalize`` decides either way."""
    narrowband_dc_remove: bool | None = None
    """``dc_remove`` for telephone-band input; None: as ``dc_remove``. A request that sets
    ``dc_remove`` decides either way."""

    def for_input_rate(self, sample_rate: int) -> PreprocessingConfig:
        """The settings for input at ``sample_rate`` Hz (the narrowband ones at 8 kHz or less),
        before a request's own overrides."""
        if sample_rate > NARROWBAND_MAX_RATE:
            return self
        narrowband = {
            "gain_normalize": self.narrowband_gain_normalize,
            "dc_remove": self.narrowband_dc_remove,
        }
        update = {stage: value for stage, value in narrowband.items() if value is not None}
        return self.model_copy(update=update) if update else self


class PostProcessingConfig(BaseModel):
    """Text stages applied to transcripts (batch results and streaming finals)."""

    model_config = ConfigDict(extra="forbid")

    itn: bool = True
    """Inverse text normalization: spoken numbers to digits."""
    itn_backend: Literal["auto", "nemo", "builtin"] = "auto"
    """``auto``: NeMo grammars when the ``theo[itn]`` extra is installed, else built-in rules."""
    entities: bool = True
    """Format entities: currency, CPF/CNPJ, phones, percentages, dates and times."""
    hot_words: list[str] = Field(default_factory=list)
    """Domain words always biased in the engine and corrected in the text."""
    hot_word_threshold: float = Field(default=85.0, ge=50, le=100)
    """rapidfuzz similarity (0-100) above which a near match is replaced by the hot word."""


class ModelManifest(BaseModel):
    """A parsed ``theo.yaml``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str = "1.0"
    type: ModelType
    engine: str
    architecture: STTArchitecture | None = None
    description: str = ""
    capabilities: Capabilities = Field(default_factory=Capabilities)
    engine_config: EngineConfig = Field(default_factory=EngineConfig)
    preprocessing: PreprocessingConfig = Field(default_factory=PreprocessingConfig)
    postprocessing: PostProcessingConfig = Field(default_factory=PostProcessingConfig)
    source: dict[str, Any] = Field(default_factory=dict)
    """Where the files came from (written by ``theo pull``; informational)."""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME_PATTERN.match(value):
            raise ValueError("must start with a letter or digit and hold only [A-Za-z0-9._-]")
        return value

    @model_validator(mode="after")
    def _check_engine_config(self) -> ModelManifest:
        accepted = ENGINE_CONFIG_KEYS.get(self.engine)
        if accepted is None:
            return self  # an engine Theo does not know declares its own keys
        unknown = sorted(set(self.engine_config.model_extra or {}) - accepted)
        if unknown:
            common = sorted(EngineConfig.model_fields)
            raise ValueError(
                f"engine_config key(s) {', '.join(unknown)} are not read by engine "
                f"'{self.engine}' (accepted: {', '.join([*common, *sorted(accepted)])})"
            )
        return self

    @classmethod
    def from_dict(cls, data: object, origin: str = "<manifest>") -> ModelManifest:
        """Validate a mapping, raising :class:`ManifestError` with a readable message."""
        if not isinstance(data, dict):
            raise ManifestError(f"{origin}: expected a mapping at the top level")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'manifest'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ManifestError(f"{origin}: {problems}") from exc

    @classmethod
    def load(cls, model_dir: Path) -> ModelManifest:
        """Read and validate ``<model_dir>/theo.yaml``."""
        path = model_dir / MANIFEST_FILENAME
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ManifestError(f"{path}: manifest not found") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ManifestError(f"{path}: invalid YAML: {exc}") from exc
        return cls.from_dict(data, origin=str(path))

    def dump(self, model_dir: Path) -> Path:
        """Write this manifest as ``<model_dir>/theo.yaml``."""
        path = model_dir / MANIFEST_FILENAME
        data = self.model_dump(mode="json", exclude_defaults=False)
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        return path
