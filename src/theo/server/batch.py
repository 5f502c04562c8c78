"""The batch path around the engine: decode and preprocess before, post-process after.

Both directions are CPU-bound and run off the event loop (callers use ``asyncio.to_thread``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, BinaryIO

from theo.audio.buffer import GrowingBuffer
from theo.audio.decode import DecodeLimits, StreamingDecoder
from theo.audio.pcm import float_to_pcm16_array
from theo.manifest import PreprocessingConfig
from theo.postprocessing.chain import PostProcessingOptions, PostProcessor
from theo.preprocessing.chain import preprocess_stream
from theo.types import BatchResult


def prepare_audio(
    source: bytes | BinaryIO,
    config: PreprocessingConfig,
    overrides: dict[str, Any],
    limits: DecodeLimits | None = None,
) -> bytes:
    """Decode an upload within ``limits``, reject empty/silent audio, preprocess it.

    Decoding, preprocessing and PCM16 conversion run frame by frame into one buffer that
    grows in place and is unmapped on return: the peak memory is twice the 16 kHz PCM16
    size of the audio (the buffer and the returned copy) plus a constant, whatever the
    codec, rate or channels of the upload, and only the returned bytes stay resident.

    Args:
        source: The uploaded file's bytes, or the (seekable) file itself.
        config: The model's preprocessing settings (its narrowband ones apply to input at
            8 kHz or less).
        overrides: Per-request overrides of ``config``.
        limits: Bounds on duration, sample rate, compression ratio and corrupt packets;
            the defaults when omitted.

    Returns:
        The engine's input: 16 kHz mono PCM16.

    Raises:
        AudioFormatError: undecodable, empty or silent audio, a sample rate out of range,
            a decompression bomb, or too many corrupt packets.
        AudioTooLongError: the audio is longer than ``limits.max_duration_s``.
    """
    with StreamingDecoder(source, limits) as decoder, GrowingBuffer() as pcm16:
        effective = config.for_input_rate(decoder.sample_rate)
        if overrides:
            effective = effective.model_copy(update=overrides)
        for chunk in preprocess_stream(decoder.frames(), decoder.sample_rate, effective):
            pcm16.append(float_to_pcm16_array(chunk))
        decoder.check_has_signal()
        return pcm16.getvalue()


def postprocess_result(result: BatchResult, options: PostProcessingOptions) -> BatchResult:
    """Post-process every segment; the full text is the processed segments joined.

    Each segment goes through :class:`PostProcessor`, the same entry point realtime
    finals use, with one chain (one ITN engine) for the whole result. Building ``text``
    from the processed segments keeps verbose_json, srt and vtt consistent with ``text``
    by construction.
    """
    processor = PostProcessor(options)
    if not result.segments:
        return dataclasses.replace(result, text=processor.process(result.text, result.language))
    segments = tuple(
        dataclasses.replace(s, text=" " + processor.process(s.text.strip(), result.language))
        for s in result.segments
    )
    text = " ".join(s.text.strip() for s in segments if s.text.strip())
    return dataclasses.replace(result, text=text, segments=segments)
