"""The batch path around the engine: decode and preprocess before, post-process after.

Both directions are CPU-bound and run off the event loop (callers use ``asyncio.to_thread``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from theo.audio.decode import check_has_signal, decode_audio, to_pcm16
from theo.manifest import PreprocessingConfig
from theo.postprocessing.chain import PostProcessingChain
from theo.preprocessing.chain import preprocess_batch
from theo.types import BatchResult


def prepare_audio(data: bytes, config: PreprocessingConfig, overrides: dict[str, Any]) -> bytes:
    """Decode an upload, reject empty/silent audio, run the preprocessing chain.

    Returns:
        The engine's input: 16 kHz mono PCM16.

    Raises:
        AudioFormatError: undecodable, empty or silent audio.
    """
    decoded = decode_audio(data)
    check_has_signal(decoded)
    effective = config.model_copy(update=overrides) if overrides else config
    return to_pcm16(preprocess_batch(decoded.samples, decoded.sample_rate, effective))


def postprocess_result(result: BatchResult, chain: PostProcessingChain) -> BatchResult:
    """Post-process every segment; the full text is the processed segments joined.

    Building ``text`` from the processed segments keeps verbose_json, srt and vtt
    consistent with ``text`` by construction.
    """
    if not result.segments:
        return dataclasses.replace(result, text=chain.process(result.text, result.language))
    segments = tuple(
        dataclasses.replace(s, text=" " + chain.process(s.text.strip(), result.language))
        for s in result.segments
    )
    text = " ".join(s.text.strip() for s in segments if s.text.strip())
    return dataclasses.replace(result, text=text, segments=segments)
