"""Piper (piper-tts): one VITS voice per model directory (``<voice>.onnx`` + ``.onnx.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from theo.engines.tts.backend import EngineInfo, SynthesisOptions, VoiceInfo
from theo.engines.tts.runtime import onnx_device, onnx_session_options
from theo.manifest import EngineConfig

if TYPE_CHECKING:
    from piper import PiperVoice

# Piper's own CUDA setting: the exhaustive cuDNN search re-runs for every new text length.
_CUDA_PROVIDER = ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"})
_HEADROOM = 0.9  # Piper scales each sentence to full scale; lossy encoders overshoot that
_WARM_UP_TEXT = "Hello."


def _voice_names(model: Path, config: dict[str, Any]) -> dict[str, int]:
    """Speaker name -> id; a single-speaker voice is named after its dataset."""
    speakers: dict[str, int] = dict(config.get("speaker_id_map") or {})
    if speakers:
        return speakers
    name = str(config.get("dataset") or model.stem.split("-")[1])
    return {name: 0}


class PiperBackend:
    """Synthesizes with a Piper voice on onnxruntime; phonemes come from espeak-ng.

    ``engine_config.voice_genders`` (voice id -> ``female``/``male``) fills in what the
    voice files do not say.
    """

    engine_name = "piper"

    def __init__(self) -> None:
        self._voice: PiperVoice | None = None
        self._speakers: dict[str, int] = {}

    def load(self, model_dir: Path, config: EngineConfig) -> EngineInfo:
        """Load the only ``*.onnx`` voice in ``model_dir`` and synthesize once to warm it."""
        try:
            import onnxruntime  # type: ignore[import-untyped]  # noqa: PLC0415 - no types
            from piper import PiperConfig, PiperVoice  # noqa: PLC0415 - only in workers
        except ImportError as exc:
            raise RuntimeError(
                "piper-tts is not installed: pip install 'theo-openvoice[piper]'"
            ) from exc

        models = sorted(model_dir.glob("*.onnx"))
        if len(models) != 1:
            raise FileNotFoundError(f"expected one .onnx voice in {model_dir}, found {len(models)}")
        config_path = Path(f"{models[0]}.json")
        raw_config = json.loads(config_path.read_text(encoding="utf-8"))
        device = onnx_device(config.device)
        providers: list[Any] = ["CPUExecutionProvider"]
        if device == "cuda":
            providers.insert(0, _CUDA_PROVIDER)
        # Built here rather than with PiperVoice.load, which offers no session options.
        voice = PiperVoice(
            session=onnxruntime.InferenceSession(
                str(models[0]),
                sess_options=onnx_session_options(config.cpu_threads),
                providers=providers,
            ),
            config=PiperConfig.from_dict(raw_config),
        )
        self._voice = voice
        self._speakers = _voice_names(models[0], raw_config)
        language = voice.config.espeak_voice.replace("_", "-").lower()
        genders: dict[str, str] = dict(getattr(config, "voice_genders", None) or {})
        voices = tuple(
            VoiceInfo(
                id=name,
                name=name.replace("_", " ").title(),
                language=language,
                gender=genders.get(name, ""),
            )
            for name in self._speakers
        )
        info = EngineInfo(
            engine=self.engine_name,
            device=device,
            sample_rate=voice.config.sample_rate,
            voices=voices,
            default_voice=voices[0].id,
            languages=(language,),
            default_language=language,
        )
        self.synthesize(
            _WARM_UP_TEXT, SynthesisOptions(voice=info.default_voice, language=language)
        )
        return info

    def synthesize(self, text: str, options: SynthesisOptions) -> npt.NDArray[np.float32]:
        """Speak ``text``; Piper's own sentence chunks are joined without gaps."""
        from piper import SynthesisConfig  # noqa: PLC0415 - engines are imported only in workers

        voice = self._voice
        if voice is None:
            raise RuntimeError("the Piper voice is not loaded")
        syn_config = SynthesisConfig(
            speaker_id=self._speakers.get(options.voice),
            length_scale=voice.config.length_scale / options.speed,
            volume=_HEADROOM,
        )
        chunks = [chunk.audio_float_array for chunk in voice.synthesize(text, syn_config)]
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)
