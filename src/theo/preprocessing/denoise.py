"""Noise suppression with RNNoise (pyrnnoise), run at its native 48 kHz inside the stage."""

from __future__ import annotations

import ctypes
import weakref

import numpy as np
import numpy.typing as npt

from theo.audio.pcm import Samples
from theo.preprocessing.resample import Resample
from theo.preprocessing.stage import no_samples

RNNOISE_RATE = 48_000
"""The only rate RNNoise works at."""
RNNOISE_DELAY = 960
"""Samples (at 48 kHz) by which RNNoise's output lags its input: two 10 ms frames."""
_PCM16_SCALE = 32_768.0


class Denoise:
    """RNNoise denoiser that returns audio aligned with, and as long as, its input.

    Input is resampled to 48 kHz, cut into RNNoise's 10 ms (480-sample) frames, denoised
    and resampled back. Each instance owns its RNNoise state and buffers, so sessions never
    share them. The stage removes RNNoise's own delay (:data:`RNNOISE_DELAY`): its first
    20 ms of output are dropped and :meth:`flush` feeds silence to release the tail, so the
    output is time-aligned with the input. The cost is latency: a sample leaves
    :meth:`process` only once the 10 ms frame two frames after it is complete, and soxr
    releases resampled audio in blocks. Fed 20 ms frames at 16 kHz, the stage holds a
    sample back about 70 ms on average and 100 ms at most.
    """

    name = "denoise"

    def __init__(self, sample_rate: int) -> None:
        """Create a denoiser, with its own RNNoise state, for audio at ``sample_rate`` Hz."""
        # Lazy, so that importing Theo never loads RNNoise; pyrnnoise ships no type information.
        from pyrnnoise import rnnoise  # type: ignore[import-untyped]  # noqa: PLC0415 - lazy

        self._process_frame = rnnoise.lib.rnnoise_process_frame
        self._frame_size = int(rnnoise.FRAME_SIZE)
        state = rnnoise.create()
        weakref.finalize(self, rnnoise.destroy, state)
        self._state = state
        self._upsample = Resample(sample_rate, RNNOISE_RATE)
        self._downsample = Resample(RNNOISE_RATE, sample_rate)
        self._frame: npt.NDArray[np.float32] = np.zeros(self._frame_size, dtype=np.float32)
        self._frame_pointer = self._frame.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        self._pending = no_samples()
        self._received = 0
        self._released = 0
        self._to_skip = RNNOISE_DELAY

    def process(self, samples: Samples) -> Samples:
        """Denoise the next samples; output trails input by the delay described above."""
        upsampled = self._upsample.process(samples)
        self._received += upsampled.size
        denoised = self._denoise(upsampled)
        self._released += denoised.size
        return self._downsample.process(denoised)

    def flush(self) -> Samples:
        """Denoise the buffered tail and return the rest of the aligned output."""
        tail = self._upsample.flush()
        self._received += tail.size
        held = self._pending.size + tail.size
        # Silence after the end pushes RNNoise's delayed last frames out; the excess is cut.
        padding = RNNOISE_DELAY + (-held) % self._frame_size
        denoised = self._denoise(np.concatenate([tail, np.zeros(padding, dtype=np.float32)]))
        denoised = denoised[: self._received - self._released]
        self._released += denoised.size
        return np.concatenate([self._downsample.process(denoised), self._downsample.flush()])

    def _denoise(self, upsampled: Samples) -> Samples:
        """Run every complete 480-sample frame through RNNoise, dropping its initial delay."""
        buffered = np.concatenate([self._pending, upsampled])
        whole = buffered.size - buffered.size % self._frame_size
        self._pending = buffered[whole:]
        out = np.empty(whole, dtype=np.float32)
        for start in range(0, whole, self._frame_size):
            np.multiply(buffered[start : start + self._frame_size], _PCM16_SCALE, out=self._frame)
            self._process_frame(self._state, self._frame_pointer, self._frame_pointer)
            out[start : start + self._frame_size] = self._frame
        out /= _PCM16_SCALE
        skipped = min(self._to_skip, out.size)
        self._to_skip -= skipped
        return out[skipped:]
