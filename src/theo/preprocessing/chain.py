"""The per-stream preprocessing chain with its two taps (VAD input and engine input)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from theo.audio.pcm import ENGINE_SAMPLE_RATE, Samples
from theo.errors import AudioFormatError, InvalidRequestError
from theo.manifest import PreprocessingConfig
from theo.preprocessing.dc_remove import DCRemove
from theo.preprocessing.denoise import Denoise
from theo.preprocessing.gain import GainNormalize
from theo.preprocessing.resample import Resample
from theo.preprocessing.stage import AudioStage, StageSequence

TELEPHONE_MAX_RATE = 8_000
"""Inputs at or below this rate are telephone band: ``denoise: auto`` turns RNNoise on."""


def denoise_wanted(config: PreprocessingConfig, input_sample_rate: int) -> bool:
    """Whether the chain for this input denoises (``auto``: telephone-band input only)."""
    if config.denoise == "auto":
        return input_sample_rate <= TELEPHONE_MAX_RATE
    return config.denoise == "on"


@dataclass(frozen=True)
class ChainOutput:
    """What one call of the chain produced, at 16 kHz.

    Attributes:
        vad: Audio for voice-activity detection: resampled, DC-removed and denoised when
            denoising is on; never gain-normalized.
        engine: Audio for the engine: ``vad`` plus gain normalization when enabled.
    """

    vad: Samples
    engine: Samples


class PreprocessingChain:
    """resample -> DC removal -> denoise -> [VAD tap] -> gain -> [engine tap].

    One chain serves one stream (a realtime session or one batch clip) and owns the state
    of all its stages. Frames of any size may be fed; after :meth:`flush` the concatenated
    outputs equal those of the whole recording fed at once.
    """

    def __init__(
        self, front: AudioStage, gain: AudioStage | None, *, denoise_enabled: bool
    ) -> None:
        """Assemble a chain from stages; use :meth:`build` to get one from a config.

        Args:
            front: Stages up to the VAD tap.
            gain: The stage between the VAD tap and the engine tap, if any.
            denoise_enabled: Whether ``front`` denoises (reported by :attr:`denoise_enabled`).
        """
        self._front = front
        self._gain = gain
        self._denoise_enabled = denoise_enabled
        self._flushed = False

    @classmethod
    def build(cls, config: PreprocessingConfig, input_sample_rate: int) -> PreprocessingChain:
        """A chain with fresh stages (own state) for input at ``input_sample_rate`` Hz.

        Raises:
            InvalidRequestError: the sample rate is not positive.
        """
        if input_sample_rate <= 0:
            raise InvalidRequestError(
                f"sample rate must be positive, got {input_sample_rate}", param="sample_rate"
            )
        denoise = denoise_wanted(config, input_sample_rate)
        stages: list[AudioStage] = [Resample(input_sample_rate, ENGINE_SAMPLE_RATE)]
        if config.dc_remove:
            stages.append(DCRemove(ENGINE_SAMPLE_RATE, config.highpass_hz))
        if denoise:
            stages.append(Denoise(ENGINE_SAMPLE_RATE))
        gain = (
            GainNormalize(
                ENGINE_SAMPLE_RATE,
                target_peak_dbfs=config.target_peak_dbfs,
                window_ms=config.gain_window_ms,
                max_gain_db=config.max_gain_db,
            )
            if config.gain_normalize
            else None
        )
        return cls(StageSequence(stages), gain, denoise_enabled=denoise)

    @property
    def denoise_enabled(self) -> bool:
        """Whether this chain runs RNNoise."""
        return self._denoise_enabled

    def process(self, frame: npt.NDArray[np.floating]) -> ChainOutput:
        """Feed the next frame of mono audio in [-1, 1] at the input sample rate.

        Raises:
            AudioFormatError: the frame is not one-dimensional or holds NaN or infinity.
            RuntimeError: the chain was already flushed.
        """
        if self._flushed:
            raise RuntimeError("the preprocessing chain was flushed; build a new one")
        samples = np.asarray(frame, dtype=np.float32)
        if samples.ndim != 1:
            raise AudioFormatError(f"expected mono samples (1-D), got shape {samples.shape}")
        if not np.isfinite(samples).all():
            raise AudioFormatError("audio frame holds NaN or infinite samples")
        return self._tap(self._front.process(samples), flushing=False)

    def flush(self) -> ChainOutput:
        """End the stream and return the audio the stages still held."""
        if self._flushed:
            raise RuntimeError("the preprocessing chain was already flushed")
        self._flushed = True
        return self._tap(self._front.flush(), flushing=True)

    def _tap(self, vad: Samples, *, flushing: bool) -> ChainOutput:
        if self._gain is None:
            return ChainOutput(vad=vad, engine=vad)
        engine = self._gain.process(vad)
        if flushing:
            engine = np.concatenate([engine, self._gain.flush()])
        return ChainOutput(vad=vad, engine=engine)


def preprocess_stream(
    frames: Iterable[npt.NDArray[np.floating]], sample_rate: int, config: PreprocessingConfig
) -> Iterator[Samples]:
    """Preprocess a clip frame by frame into the engine's 16 kHz input with a fresh chain.

    Only one frame and its output are alive at a time, so a long upload is never held as
    float audio; the concatenated outputs equal :func:`preprocess_batch` of the whole clip.

    Args:
        frames: Consecutive mono frames in [-1, 1] at ``sample_rate``, of any sizes.
        sample_rate: Rate of ``frames`` in Hz.
        config: Which stages to run and their settings.

    Yields:
        The engine tap for each frame, then what the chain released on flushing.
    """
    chain = PreprocessingChain.build(config, sample_rate)
    for frame in frames:
        yield chain.process(frame).engine
    yield chain.flush().engine


def preprocess_batch(
    samples: npt.NDArray[np.floating], sample_rate: int, config: PreprocessingConfig
) -> Samples:
    """Preprocess a whole clip into the engine's 16 kHz input with a fresh chain.

    Args:
        samples: Mono audio in [-1, 1] at ``sample_rate``.
        sample_rate: Rate of ``samples`` in Hz.
        config: Which stages to run and their settings.

    Returns:
        The engine tap of the chain after processing the clip and flushing it.
    """
    return np.concatenate(list(preprocess_stream([samples], sample_rate, config)))
