"""faster-whisper (CTranslate2) engine."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from theo.manifest import EngineConfig
from theo.types import BatchResult, Segment, Task, TranscribeParams, Word
from theo.workers.stt.backend import CancelledByClient, LoadedModelInfo, UnsupportedParameterError


def resolve_device(device: str, compute_type: str) -> tuple[str, str]:
    """Turn ``auto`` settings into a concrete device and compute type.

    ``auto`` picks CUDA with float16 when a GPU is visible, otherwise CPU with int8.
    """
    import ctranslate2  # noqa: PLC0415 - engines are imported lazily, inside the worker only

    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def build_prompt(prompt: str | None, hot_words: tuple[str, ...]) -> str | None:
    """Merge hot words into Whisper's initial prompt so the decoder is biased towards them."""
    parts = []
    if hot_words:
        parts.append(", ".join(hot_words) + ".")
    if prompt:
        parts.append(prompt)
    return " ".join(parts) if parts else None


class FasterWhisperBackend:
    """Batch transcription and translation with faster-whisper."""

    engine_name = "faster-whisper"

    def __init__(self) -> None:
        self._model: Any = None
        self._beam_size = 5
        self._vad_filter = False

    def load(self, model_dir: Path, config: EngineConfig) -> LoadedModelInfo:
        """Load a CTranslate2 Whisper model directory."""
        from faster_whisper import WhisperModel  # noqa: PLC0415 - lazy engine import

        device, compute_type = resolve_device(config.device, config.compute_type)
        self._model = WhisperModel(
            str(model_dir),
            device=device,
            compute_type=compute_type,
            cpu_threads=config.cpu_threads,
            local_files_only=True,
        )
        self._beam_size = config.beam_size
        self._vad_filter = config.vad_filter
        return LoadedModelInfo(engine=self.engine_name, device=device, compute_type=compute_type)

    def _check_language(self, params: TranscribeParams) -> None:
        from faster_whisper.tokenizer import _LANGUAGE_CODES  # noqa: PLC0415 - lazy engine import

        language = params.language
        if language is None:
            return
        if language not in _LANGUAGE_CODES:
            raise UnsupportedParameterError("language", f"Unsupported language '{language}'.")
        if not self._model.model.is_multilingual and language != "en":
            raise UnsupportedParameterError(
                "language", f"This model is English-only; language '{language}' is not supported."
            )
        if params.task is Task.TRANSLATE and not self._model.model.is_multilingual:
            raise UnsupportedParameterError(
                "model", "This model is English-only; it cannot translate."
            )

    def transcribe(
        self,
        audio: npt.NDArray[np.float32],
        params: TranscribeParams,
        cancel: threading.Event,
    ) -> BatchResult:
        """Run the decoder; segments are produced lazily, so cancellation is checked per segment."""
        if self._model is None:
            raise RuntimeError("model not loaded")
        self._check_language(params)
        segments_iter, info = self._model.transcribe(
            audio,
            language=params.language or None,
            task=params.task.value,
            initial_prompt=build_prompt(params.prompt, params.hot_words),
            temperature=params.temperature if params.temperature > 0 else 0.0,
            word_timestamps=params.word_timestamps,
            beam_size=self._beam_size,
            vad_filter=self._vad_filter,
        )
        segments: list[Segment] = []
        for index, seg in enumerate(segments_iter):
            if cancel.is_set():
                raise CancelledByClient
            words = tuple(
                Word(word=w.word, start=w.start, end=w.end, probability=w.probability)
                for w in (seg.words or ())
            )
            segments.append(
                Segment(
                    id=index,
                    seek=seg.seek,
                    start=seg.start,
                    end=seg.end,
                    text=seg.text,
                    tokens=tuple(seg.tokens),
                    temperature=seg.temperature or 0.0,
                    avg_logprob=seg.avg_logprob,
                    compression_ratio=seg.compression_ratio,
                    no_speech_prob=seg.no_speech_prob,
                    words=words,
                )
            )
        text = "".join(s.text for s in segments).strip()
        language = "en" if params.task is Task.TRANSLATE else info.language
        return BatchResult(
            text=text, language=language, duration=info.duration, segments=tuple(segments)
        )
