"""Kokoro-82M (kokoro-onnx): one ONNX model plus a voices file (an ``.npz`` of style vectors).

Kokoro voice ids encode language and gender in their first two letters (``jm_kumo``:
Japanese, male). Text is phonemized by espeak-ng (bundled by ``espeakng-loader``), so the
voices speak every language listed in :data:`LANGUAGES`, not just their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from theo.engines.tts.backend import EngineInfo, SynthesisOptions, VoiceInfo
from theo.engines.tts.runtime import onnx_device, onnx_providers, onnx_session_options
from theo.manifest import EngineConfig

if TYPE_CHECKING:
    from kokoro_onnx import Kokoro

SAMPLE_RATE = 24_000
# espeak-ng languages Kokoro v1.0 was trained to speak (Japanese and Mandarin need
# their own phonemizers, which are not bundled).
LANGUAGES = ("en-us", "en-gb", "pt-br", "es", "fr-fr", "it", "hi")
_VOICE_LANGUAGES = {
    "a": "en-us", "b": "en-gb", "e": "es", "f": "fr-fr", "h": "hi",
    "i": "it", "j": "ja", "p": "pt-br", "z": "zh",
}  # fmt: skip
_GENDERS = {"f": "female", "m": "male"}
_MIN_SPEED, _MAX_SPEED = 0.5, 2.0  # what kokoro-onnx accepts
_WARM_UP_TEXT = "Hello."


def voice_info(voice_id: str) -> VoiceInfo:
    """Language and gender from a Kokoro voice id such as ``pf_dora``."""
    prefix, _, name = voice_id.partition("_")
    language = _VOICE_LANGUAGES.get(prefix[:1], "")
    gender = _GENDERS.get(prefix[1:2], "") if len(prefix) == 2 else ""
    return VoiceInfo(voice_id, (name or voice_id).replace("_", " ").title(), language, gender)


def _one(model_dir: Path, patterns: tuple[str, ...], what: str) -> Path:
    found = sorted(p for pattern in patterns for p in model_dir.glob(pattern))
    if len(found) != 1:
        raise FileNotFoundError(f"expected one {what} in {model_dir}, found {len(found)}")
    return found[0]


class KokoroBackend:
    """Synthesizes with Kokoro on onnxruntime.

    ``engine_config`` may set ``default_voice`` and ``default_language`` (used when the
    voice's own language cannot be phonemized, e.g. the Japanese voices).
    """

    engine_name = "kokoro"

    def __init__(self) -> None:
        self._kokoro: Kokoro | None = None

    def load(self, model_dir: Path, config: EngineConfig) -> EngineInfo:
        """Load the model and voices, then synthesize once to warm the session up."""
        import onnxruntime  # type: ignore[import-untyped]  # noqa: PLC0415 - ships no types

        try:
            from kokoro_onnx import Kokoro  # noqa: PLC0415 - engines are imported only in workers
        except ImportError as exc:
            raise RuntimeError(
                "kokoro-onnx is not installed: pip install 'theo-openvoice[kokoro]'"
            ) from exc

        model = _one(model_dir, ("*.onnx",), "ONNX model")
        voices_file = _one(model_dir, ("*.npz", "voices*.bin"), "voices file")
        device = onnx_device(config.device)
        session = onnxruntime.InferenceSession(
            str(model),
            sess_options=onnx_session_options(config.cpu_threads),
            providers=onnx_providers(device),
        )
        kokoro = Kokoro.from_session(session, str(voices_file))
        self._kokoro = kokoro
        voices = tuple(voice_info(v) for v in kokoro.get_voices())
        if not voices:
            raise ValueError(f"{voices_file} holds no voices")
        default_voice = str(getattr(config, "default_voice", "") or voices[0].id)
        if default_voice not in {v.id for v in voices}:
            raise ValueError(f"default_voice '{default_voice}' is not in {voices_file.name}")
        default_language = str(getattr(config, "default_language", "") or LANGUAGES[0])
        info = EngineInfo(
            engine=self.engine_name,
            device=device,
            sample_rate=SAMPLE_RATE,
            voices=voices,
            default_voice=default_voice,
            languages=LANGUAGES,
            default_language=default_language,
            min_speed=_MIN_SPEED,
            max_speed=_MAX_SPEED,
        )
        self.synthesize(
            _WARM_UP_TEXT, SynthesisOptions(voice=default_voice, language=default_language)
        )
        return info

    def synthesize(self, text: str, options: SynthesisOptions) -> npt.NDArray[np.float32]:
        """Speak ``text``; kokoro-onnx trims the model's silence at both ends."""
        kokoro = self._kokoro
        if kokoro is None:
            raise RuntimeError("the Kokoro model is not loaded")
        audio, _ = kokoro.create(
            text, voice=options.voice, speed=options.speed, lang=options.language
        )
        return np.asarray(audio, dtype=np.float32)
