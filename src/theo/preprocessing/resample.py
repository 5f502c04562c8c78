"""Sample-rate conversion with a soxr stream, identical whether fed in frames or whole."""

from __future__ import annotations

import numpy as np
import soxr  # type: ignore[import-untyped]  # soxr ships no type information

from theo.audio.pcm import ENGINE_SAMPLE_RATE, Samples
from theo.preprocessing.stage import no_samples


class Resample:
    """Streaming resampler (soxr, high quality); a pass-through when both rates are equal.

    soxr keeps its filter history between calls and releases the tail on :meth:`flush`,
    so the concatenated output does not depend on how the input was cut into frames.
    """

    name = "resample"

    def __init__(self, input_rate: int, output_rate: int = ENGINE_SAMPLE_RATE) -> None:
        """Create a converter from ``input_rate`` to ``output_rate`` (both in Hz, positive)."""
        if input_rate <= 0 or output_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {input_rate} -> {output_rate}")
        self.input_rate = input_rate
        self.output_rate = output_rate
        self._stream = (
            None
            if input_rate == output_rate
            else soxr.ResampleStream(input_rate, output_rate, 1, dtype="float32", quality="HQ")
        )

    def process(self, samples: Samples) -> Samples:
        """Convert the next samples; soxr may hold a few back until later calls."""
        if self._stream is None:
            return samples
        return np.asarray(self._stream.resample_chunk(samples, last=False), dtype=np.float32)

    def flush(self) -> Samples:
        """Release the samples soxr still holds."""
        if self._stream is None:
            return no_samples()
        return np.asarray(self._stream.resample_chunk(no_samples(), last=True), dtype=np.float32)
