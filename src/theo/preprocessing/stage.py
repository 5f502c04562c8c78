"""The stage interface every preprocessing step implements, and a composite of stages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from theo.audio.pcm import Samples


def no_samples() -> Samples:
    """A new empty sample array."""
    return np.zeros(0, dtype=np.float32)


class AudioStage(Protocol):
    """One step of audio preprocessing that owns its state (filter memory, buffers).

    A stage instance belongs to exactly one stream: a streaming session builds its own
    stages, and the batch path builds fresh ones per clip. Feeding a recording in frames of
    any size and then calling :meth:`flush` yields the same samples as feeding it whole.
    """

    name: str
    """Short identifier used in logs and benchmarks."""

    def process(self, samples: Samples) -> Samples:
        """Consume the next samples of the stream and return the output ready so far.

        Args:
            samples: Mono float32 audio in [-1, 1]; may be empty.

        Returns:
            Output samples; their number may differ from the input's when the stage
            resamples or works on fixed-size blocks.
        """
        ...

    def flush(self) -> Samples:
        """End the stream: return whatever the stage still buffers."""
        ...


class StageSequence:
    """Stages run one after the other; the sequence is itself a stage."""

    name = "sequence"

    def __init__(self, stages: Sequence[AudioStage]) -> None:
        """Chain ``stages`` in order; an empty sequence passes audio through unchanged."""
        self.stages: tuple[AudioStage, ...] = tuple(stages)

    def process(self, samples: Samples) -> Samples:
        """Run ``samples`` through every stage in order."""
        for stage in self.stages:
            samples = stage.process(samples)
        return samples

    def flush(self) -> Samples:
        """Flush each stage and push what it released through the stages after it."""
        pending = no_samples()
        for stage in self.stages:
            pending = np.concatenate([stage.process(pending), stage.flush()])
        return pending
