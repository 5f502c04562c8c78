"""Per-session voice-activity detector: re-buffering, pre-filter, Silero and debouncing."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from theo.errors import InvalidRequestError
from theo.vad.energy import EnergyPreFilter, SpectralFlatness
from theo.vad.sensitivity import Sensitivity, thresholds_for
from theo.vad.silero import SAMPLE_RATE, WINDOW_SAMPLES, SileroModel, shared_model

EventKind = Literal["speech_start", "speech_end"]
_KEEP_BELOW = 0.15  # the keep threshold's distance below the speech threshold
# The longest dip (windows under the speech threshold) that a run of speech windows
# waiting for confirmation survives: 224 ms, the gap between two stressed words.
_MAX_RUN_DIP_WINDOWS = 7
# The most consecutive windows of such a dip that may fall under the keep threshold: 96 ms,
# Silero's own get_speech_timestamps default (min_silence_duration_ms=100).
_MAX_RUN_GAP_WINDOWS = 3


@dataclass(frozen=True)
class VADEvent:
    """A change of speech state.

    Attributes:
        kind: ``speech_start`` or ``speech_end``.
        sample_offset: Where speech starts (the first sample of its first window) or ends
            (one past the last sample of its last window), counted from the start of the
            stream at 16 kHz.
    """

    kind: EventKind
    sample_offset: int

    @property
    def ms(self) -> int:
        """``sample_offset`` in milliseconds (exact: windows are whole milliseconds)."""
        return self.sample_offset * 1000 // SAMPLE_RATE


class VADState(enum.Enum):
    """Debounced speech state of a stream."""

    SILENCE = "silence"
    SPEECH = "speech"


_TRANSITIONS: Final[Mapping[VADState, frozenset[VADState]]] = MappingProxyType(
    {
        VADState.SILENCE: frozenset({VADState.SPEECH}),
        VADState.SPEECH: frozenset({VADState.SILENCE}),
    }
)


def _windows_for(ms: int) -> int:
    """Whole windows needed to cover at least ``ms`` milliseconds (at least one)."""
    return max(1, math.ceil(ms * SAMPLE_RATE / (1000 * WINDOW_SAMPLES)))


class VADDetector:
    """Detects speech start and end in one 16 kHz stream fed in frames of any size.

    Frames are re-buffered into 512-sample (32 ms) windows. Each window goes through the
    energy pre-filter and, when that cannot rule speech out, through Silero. Speech starts
    after ``min_speech_ms`` of consecutive windows at or above the sensitivity's speech
    probability, and ends after ``min_silence_ms`` of consecutive windows below its lower
    keep probability. Durations are counted in whole windows, rounded up (250 ms -> 8
    windows, 300 ms -> 10), and Silero's score trails the end of a sound by ~30-100 ms, so
    a sound a little shorter than ``min_speech_ms`` can still start a segment.

    All state belongs to this instance; the Silero model may be shared. One thread at a
    time may call a detector (the server runs :meth:`process` through
    ``asyncio.to_thread``); :meth:`set_sensitivity` may come from another thread and
    applies from the next window.
    """

    def __init__(
        self,
        sensitivity: Sensitivity = "normal",
        min_speech_ms: int = 250,
        min_silence_ms: int = 300,
        sample_rate: int = SAMPLE_RATE,
        model: SileroModel | None = None,
    ) -> None:
        """Start a stream in silence.

        Args:
            sensitivity: ``high``, ``normal`` or ``low`` (see ``theo.vad.sensitivity``).
            min_speech_ms: Consecutive speech needed before ``speech_start``.
            min_silence_ms: Consecutive non-speech needed before ``speech_end``.
            sample_rate: Rate of the frames; Silero v6 needs 16000.
            model: The Silero model; by default the process-wide shared one.

        Raises:
            InvalidRequestError: An unknown sensitivity or a negative duration.
            ValueError: ``sample_rate`` is not 16000.
            VADModelNotFoundError: No model given and none can be found.
        """
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"VAD needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        for param, value in (("min_speech_ms", min_speech_ms), ("min_silence_ms", min_silence_ms)):
            if value < 0:
                raise InvalidRequestError(f"{param} must not be negative", param=param)
        self._flatness = SpectralFlatness(WINDOW_SAMPLES)
        self._prefilter = EnergyPreFilter(thresholds_for(sensitivity), self._flatness)
        self._sensitivity: Sensitivity = sensitivity
        self._speech_windows = _windows_for(min_speech_ms)
        self._silence_windows = _windows_for(min_silence_ms)
        self._classifier = (model if model is not None else shared_model()).classifier()
        self._pending = np.zeros(0, dtype=np.float32)
        self._received = 0
        self._next_window = 0
        self._state = VADState.SILENCE
        self._run_start = 0
        self._run_length = 0
        self._run_dip = 0  # windows since the run's latest one at the speech threshold
        self._run_gap = 0  # of those, the latest consecutive ones under the keep threshold
        self._quiet_length = 0
        self._speech_end = 0
        self.windows_total = 0
        """Windows judged so far."""
        self.windows_prefiltered = 0
        """Windows the energy pre-filter answered without Silero."""

    @property
    def sensitivity(self) -> Sensitivity:
        """The sensitivity in effect for the next window."""
        return self._sensitivity

    @property
    def is_speech(self) -> bool:
        """Whether the stream is inside a detected speech segment."""
        return self._state is VADState.SPEECH

    @property
    def samples_processed(self) -> int:
        """Samples received so far (the last ``< 512`` may still wait for a full window)."""
        return self._received

    @property
    def pausing(self) -> bool:
        """Speech is on but the latest windows were not: the speaker may be finishing."""
        return self._state is VADState.SPEECH and self._quiet_length > 0

    @property
    def quiet_ms(self) -> float:
        """How long the current pause has lasted (0 outside a pause)."""
        return self._quiet_length * WINDOW_SAMPLES * 1000 / SAMPLE_RATE if self.pausing else 0.0

    def end_pause(self) -> VADEvent | None:
        """End speech now, during a pause the caller judged to be the end: the
        ``speech_end`` the silence wait would give later, at the same offset. ``None``
        outside a pause."""
        if not self.pausing:
            return None
        self._run_length = 0
        return self._move_to(VADState.SILENCE, self._speech_end)

    def set_sensitivity(self, sensitivity: Sensitivity, threshold: float | None = None) -> None:
        """Switch sensitivity (and optionally the speech probability) from the next window on.

        Args:
            sensitivity: ``high``, ``normal`` or ``low``.
            threshold: Silero probability that starts speech instead of the sensitivity's;
                a segment stays open down to 0.15 below it, as the sensitivities do.

        Raises:
            InvalidRequestError: An unknown sensitivity.
        """
        thresholds = thresholds_for(sensitivity)
        if threshold is not None:
            thresholds = dataclasses.replace(
                thresholds, speech_prob=threshold, keep_prob=max(0.0, threshold - _KEEP_BELOW)
            )
        prefilter = EnergyPreFilter(thresholds, self._flatness)
        self._sensitivity = sensitivity
        self._prefilter = prefilter

    def set_min_silence_ms(self, min_silence_ms: int) -> None:
        """Silence needed to end speech, from the next window on."""
        self._silence_windows = _windows_for(min_silence_ms)

    def process(self, frame: npt.ArrayLike) -> list[VADEvent]:
        """Consume the next frame of the stream.

        Args:
            frame: Mono float audio in [-1, 1] at 16 kHz, any length (may be empty).

        Returns:
            The events of every window the frame completed, in order.

        Raises:
            ValueError: ``frame`` is not a one-dimensional array of finite floats.
        """
        samples = np.asarray(frame)
        if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating):
            raise ValueError(
                f"expected mono float audio, got shape {samples.shape} dtype {samples.dtype}"
            )
        if not np.isfinite(samples).all():
            raise ValueError("audio frame contains NaN or infinite samples")
        self._received += samples.size
        buffered = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        whole = buffered.size - buffered.size % WINDOW_SAMPLES
        events: list[VADEvent] = []
        for start in range(0, whole, WINDOW_SAMPLES):
            event = self._judge(buffered[start : start + WINDOW_SAMPLES])
            if event is not None:
                events.append(event)
        self._pending = buffered[whole:].copy()
        return events

    def flush(self) -> list[VADEvent]:
        """End the stream: close an open speech segment and forget the partial window.

        The detector returns to silence with a fresh Silero state; offsets keep counting
        from the start of the stream, so it can take more audio afterwards.
        """
        events: list[VADEvent] = []
        if self._state is VADState.SPEECH:
            events.append(self._move_to(VADState.SILENCE, self._speech_end))
        self._next_window = self._received
        self._pending = np.zeros(0, dtype=np.float32)
        self._run_length = 0
        self._quiet_length = 0
        self._classifier.reset()
        return events

    def _judge(self, window: npt.NDArray[np.float32]) -> VADEvent | None:
        """Score one window and advance the state machine."""
        offset = self._next_window
        self._next_window += WINDOW_SAMPLES
        self.windows_total += 1
        prefilter = self._prefilter
        heard = prefilter.classify(window).is_speech_candidate
        if heard:
            score = self._classifier.probability(window)
        else:
            self._classifier.skip(window)
            self.windows_prefiltered += 1
            score = 0.0
        thresholds = prefilter.thresholds
        if self._state is VADState.SILENCE:
            # A run is confirmed on the full threshold only: Silero's output decays over
            # ~100 ms after a sound stops, and counting that tail at the lower keep
            # threshold would let a 150 ms burst pass a 250 ms minimum. A short dip inside
            # a run (the stop between two emphatic words, JFK's "ask ... not"; an unsure
            # first word, Piper's "My phone" at 8 kHz) neither counts nor breaks it, as
            # Silero's own get_speech_timestamps keeps a segment open until its score has
            # stayed under the lower threshold for 100 ms. A window the pre-filter rules
            # out (too quiet or noise) is no doubt of Silero's: it breaks the run.
            if score < thresholds.speech_prob:
                self._run_dip += 1
                self._run_gap = self._run_gap + 1 if score < thresholds.keep_prob else 0
                if (
                    not heard
                    or self._run_gap > _MAX_RUN_GAP_WINDOWS
                    or self._run_dip > _MAX_RUN_DIP_WINDOWS
                ):
                    self._run_length = 0
                return None
            if self._run_length == 0:
                self._run_start = offset
            self._run_length += 1
            self._run_dip = self._run_gap = 0
            self._speech_end = offset + WINDOW_SAMPLES
            if self._run_length < self._speech_windows:
                return None
            self._quiet_length = 0
            return self._move_to(VADState.SPEECH, self._run_start)
        if score >= thresholds.keep_prob:
            self._quiet_length = 0
            self._speech_end = offset + WINDOW_SAMPLES
            return None
        self._quiet_length += 1
        if self._quiet_length < self._silence_windows:
            return None
        self._run_length = 0
        return self._move_to(VADState.SILENCE, self._speech_end)

    def _move_to(self, state: VADState, sample_offset: int) -> VADEvent:
        if state not in _TRANSITIONS[self._state]:
            raise RuntimeError(f"illegal VAD transition {self._state.name} -> {state.name}")
        self._state = state
        kind: EventKind = "speech_start" if state is VADState.SPEECH else "speech_end"
        return VADEvent(kind, sample_offset)
