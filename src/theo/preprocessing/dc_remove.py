"""DC-offset and rumble removal: a Butterworth high-pass whose state is carried across frames."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import signal

from theo.audio.pcm import Samples
from theo.preprocessing.stage import no_samples


class DCRemove:
    """High-pass filter (2nd-order Butterworth by default) run as second-order sections."""

    name = "dc_remove"

    def __init__(self, sample_rate: int, cutoff_hz: float = 20.0, order: int = 2) -> None:
        """Design the filter.

        Args:
            sample_rate: Rate of the audio the stage receives, in Hz.
            cutoff_hz: -3 dB corner of the high-pass; must lie below the Nyquist frequency.
            order: Butterworth order.
        """
        if not 0 < cutoff_hz < sample_rate / 2:
            raise ValueError(f"cut-off {cutoff_hz} Hz is outside (0, {sample_rate / 2}) Hz")
        self._sos: npt.NDArray[np.float64] = signal.butter(
            order, cutoff_hz, btype="highpass", fs=sample_rate, output="sos"
        )
        self._state: npt.NDArray[np.float64] | None = None

    def process(self, samples: Samples) -> Samples:
        """Filter the next samples, continuing from the state the previous frame left."""
        if samples.size == 0:
            return samples
        data = samples.astype(np.float64)
        if self._state is None:
            # Start as if the first sample had always been there, so a stream that opens on
            # a DC offset does not begin with a step the filter turns into a click.
            self._state = signal.sosfilt_zi(self._sos) * data[0]
        filtered, self._state = signal.sosfilt(self._sos, data, zi=self._state)
        return filtered.astype(np.float32)

    def flush(self) -> Samples:
        """Nothing is buffered: the filter emits one sample per input sample."""
        return no_samples()
