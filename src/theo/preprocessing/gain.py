"""Peak gain normalization for the engine's input, independent of how audio is framed."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import signal
from scipy.ndimage import maximum_filter1d

from theo.audio.pcm import Samples
from theo.preprocessing.stage import no_samples

RELEASE_MS = 100.0
"""Time constant with which the gain rises again after a loud peak has left the window."""


def db_to_linear(decibels: float) -> float:
    """Amplitude ratio of a level in dB."""
    return float(10.0 ** (decibels / 20.0))


class GainNormalize:
    """Scale audio so that its recent peak sits at a target level.

    For each sample ``n`` the stage takes the peak ``P[n] = max |x[n-W+1 .. n]|`` over the
    last ``W`` samples (the window, causal), the gain that would bring that peak to the
    target, ``g[n] = min(target / P[n], max_gain)``, and applies ``min(g[n], s[n])`` where
    ``s`` is ``g`` through a one-pole low-pass (``release_ms``). A new loud peak therefore
    lowers the gain on the very sample it arrives (output never exceeds the target), while
    the gain rises smoothly once the peak leaves the window, and silence is amplified by
    at most ``max_gain``.

    Every quantity is defined per sample from the stream's past only; the stage carries the
    last ``W - 1`` magnitudes and the low-pass state, so frames of any size give exactly the
    output of the whole recording processed at once.
    """

    name = "gain"

    def __init__(
        self,
        sample_rate: int,
        target_peak_dbfs: float = -3.0,
        window_ms: float = 500.0,
        max_gain_db: float = 30.0,
        release_ms: float = RELEASE_MS,
    ) -> None:
        """Configure the normalizer.

        Args:
            sample_rate: Rate of the audio the stage receives, in Hz.
            target_peak_dbfs: Level the windowed peak is brought to.
            window_ms: Length of the peak window.
            max_gain_db: Largest amplification applied, in dB (>= 0).
            release_ms: Time constant of the gain's rise after a peak leaves the window.
        """
        if max_gain_db < 0:
            raise ValueError("max_gain_db must not be negative")
        self._target = db_to_linear(target_peak_dbfs)
        self._max_gain = db_to_linear(max_gain_db)
        self._window = max(1, round(sample_rate * window_ms / 1000.0))
        pole = float(np.exp(-1000.0 / (release_ms * sample_rate)))
        self._smooth_b = np.array([1.0 - pole])
        self._smooth_a = np.array([1.0, -pole])
        self._history: npt.NDArray[np.float32] = np.zeros(self._window - 1, dtype=np.float32)
        self._smooth_state: npt.NDArray[np.float64] | None = None

    def process(self, samples: Samples) -> Samples:
        """Normalize the next samples."""
        if samples.size == 0:
            return samples
        peak = self._window_peaks(np.abs(samples))
        # target / max(P, target / max_gain) == min(target / P, max_gain), without dividing by 0.
        wanted = self._target / np.maximum(peak.astype(np.float64), self._target / self._max_gain)
        if self._smooth_state is None:
            self._smooth_state = signal.lfilter_zi(self._smooth_b, self._smooth_a) * wanted[0]
        smoothed, self._smooth_state = signal.lfilter(
            self._smooth_b, self._smooth_a, wanted, zi=self._smooth_state
        )
        gain = np.minimum(wanted, smoothed)
        return (samples * gain).astype(np.float32)

    def _window_peaks(self, magnitude: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``max |x|`` over the window ending at each new sample, then update the history."""
        history = self._history
        size = magnitude.size
        peaks: npt.NDArray[np.float32]
        if size < history.size:
            # Frames shorter than the window (the streaming case): the window of sample i
            # covers history[i:] and magnitude[: i + 1], so suffix maxima of the first
            # ``size`` history values, the maximum of the rest and a running maximum of the
            # frame give the exact sliding maximum without refiltering the whole history.
            from_history = np.maximum(
                np.maximum.accumulate(history[:size][::-1])[::-1], history[size:].max()
            )
            peaks = np.maximum(from_history, np.maximum.accumulate(magnitude))
            self._history = np.concatenate([history[size:], magnitude])
            return peaks
        joined = np.concatenate([history, magnitude])
        peaks = maximum_filter1d(joined, self._window, origin=(self._window - 1) // 2)
        if history.size:
            self._history = joined[-history.size :]
        return peaks[history.size :]

    def flush(self) -> Samples:
        """Nothing is buffered: the gain is applied sample by sample."""
        return no_samples()
