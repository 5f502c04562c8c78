"""Named VAD sensitivities and the thresholds each one applies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, TypeGuard, get_args

from theo.errors import InvalidRequestError

Sensitivity = Literal["high", "normal", "low"]
"""How readily speech is detected: ``high`` catches quiet speech, ``low`` resists noise."""

SENSITIVITIES: Final[tuple[Sensitivity, ...]] = get_args(Sensitivity)


@dataclass(frozen=True)
class VADThresholds:
    """Every threshold that one sensitivity sets.

    Attributes:
        speech_prob: Silero probability at or above which a window counts as speech while
            the stream is in silence; ``min_speech_ms`` of such windows in a row start a
            segment.
        keep_prob: Lower probability at or above which a window keeps an open segment
            open (hysteresis, like Silero's own ``neg_threshold``).
        silence_dbfs: Windows whose RMS is below this level are silence without asking Silero.
        noise_dbfs: Windows below this level whose spectrum is flat count as noise.
        noise_flatness: Spectral flatness (0 tonal .. 1 white) at or above which a window
            below ``noise_dbfs`` counts as noise.
    """

    speech_prob: float
    keep_prob: float
    silence_dbfs: float
    noise_dbfs: float
    noise_flatness: float


# Silero's probabilities: 0.5 is its own default, with the keep threshold 0.15 lower as in
# its neg_threshold; high and low move both by 0.15. Silero is nearly level-invariant (the
# fixture attenuated by 30 dB gets the same probabilities), so the silence floor is what
# decides whether quiet speech counts: LibriVox speech windows sit at -26 dBFS median and
# -51 dBFS at the 1st percentile, its room noise at about -53 dBFS; 30 dB down, the speech
# median is -56 dBFS, above high's floor and below low's. White noise has a flatness of
# about 0.56 per 512-sample window (0.49 at the 1st percentile); speech stays below 0.15.
THRESHOLDS: Final[Mapping[Sensitivity, VADThresholds]] = MappingProxyType(
    {
        "high": VADThresholds(
            0.35, 0.20, silence_dbfs=-70.0, noise_dbfs=-50.0, noise_flatness=0.40
        ),
        "normal": VADThresholds(
            0.50, 0.35, silence_dbfs=-60.0, noise_dbfs=-35.0, noise_flatness=0.35
        ),
        "low": VADThresholds(0.65, 0.50, silence_dbfs=-50.0, noise_dbfs=-25.0, noise_flatness=0.30),
    }
)


def is_sensitivity(value: object) -> TypeGuard[Sensitivity]:
    """Whether ``value`` names a sensitivity."""
    return value in SENSITIVITIES


def thresholds_for(sensitivity: str) -> VADThresholds:
    """The thresholds of a named sensitivity.

    Raises:
        InvalidRequestError: ``sensitivity`` is not one of ``high``, ``normal``, ``low``.
    """
    if not is_sensitivity(sensitivity):
        allowed = ", ".join(SENSITIVITIES)
        raise InvalidRequestError(
            f"Unknown VAD sensitivity '{sensitivity}'; expected one of: {allowed}.",
            param="vad_sensitivity",
        )
    return THRESHOLDS[sensitivity]
