"""Audio preprocessing: composable stages, one chain per stream.

A :class:`PreprocessingChain` resamples to 16 kHz, removes DC offset, optionally denoises,
exposes that audio for voice-activity detection, then gain-normalizes it for the engine.
Every stage owns its state, so each realtime session builds its own chain and the batch
path (:func:`preprocess_batch`) runs the same classes over a whole clip.
"""

from theo.audio.pcm import ENGINE_SAMPLE_RATE, Samples
from theo.preprocessing.chain import (
    ChainOutput,
    PreprocessingChain,
    denoise_wanted,
    preprocess_batch,
)
from theo.preprocessing.dc_remove import DCRemove
from theo.preprocessing.denoise import Denoise
from theo.preprocessing.gain import GainNormalize
from theo.preprocessing.resample import Resample
from theo.preprocessing.stage import AudioStage, StageSequence

__all__ = [
    "ENGINE_SAMPLE_RATE",
    "AudioStage",
    "ChainOutput",
    "DCRemove",
    "Denoise",
    "GainNormalize",
    "PreprocessingChain",
    "Resample",
    "Samples",
    "StageSequence",
    "denoise_wanted",
    "preprocess_batch",
]
