"""A fake TTS engine: each piece of text becomes a tone lasting ``seconds_per_char`` per
character, at a fixed pace of synthesis, so streaming and cancellation are observable.

``engine_config``: ``seconds_per_char`` (default 0.05 s of audio per character) and
``synthesis_delay_s`` (default 0.2 s of "work" per piece).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from theo.engines.tts.backend import EngineInfo, SynthesisOptions, VoiceInfo
from theo.manifest import EngineConfig

SAMPLE_RATE = 16_000


class FakeTTSBackend:
    """Tones for text: the audio's length tells how much text was spoken."""

    engine_name = "fake"

    def __init__(self) -> None:
        self._seconds_per_char = 0.05
        self._delay_s = 0.2

    def load(self, model_dir: Path, config: EngineConfig) -> EngineInfo:
        """Read the pace from ``engine_config``; one voice, English."""
        extra = config.model_extra or {}
        self._seconds_per_char = float(extra.get("seconds_per_char", 0.05))
        self._delay_s = float(extra.get("synthesis_delay_s", 0.2))
        return EngineInfo(
            engine="fake",
            device="cpu",
            sample_rate=SAMPLE_RATE,
            voices=(VoiceInfo(id="tone", name="Tone", language="en-us"),),
            default_voice="tone",
            languages=("en-us",),
            default_language="en-us",
        )

    def synthesize(self, text: str, options: SynthesisOptions) -> npt.NDArray[np.float32]:
        """A 440 Hz tone as long as the text asks for, after the scripted delay."""
        time.sleep(self._delay_s)  # the engine's work: keeps a long text streaming a while
        samples = round(len(text) * self._seconds_per_char * SAMPLE_RATE / options.speed)
        t = np.arange(samples, dtype=np.float32) / SAMPLE_RATE
        return (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
