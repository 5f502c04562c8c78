"""Barge-in for a session that speaks: its echo guard, fed with exactly what it sent.

With ``barge_in`` on, the session keeps listening while it speaks. Every piece of reply
audio it sends becomes the guard's reference (decoded from the output format and
resampled to the input rate, as the client plays it), every incoming frame is cleaned of
that echo before VAD and STT, and the caller's own voice over it is reported so the
session can stop speaking. See :mod:`theo.session.echo_guard` for the signal processing.
"""

from __future__ import annotations

import numpy as np

from theo.audio.pcm import Samples, float_to_pcm16_array
from theo.preprocessing.resample import Resample
from theo.session.audio_format import AudioEncoding, InputFormat
from theo.session.echo_guard import EchoGuard
from theo.session.events import OutputAudio

_PCM16_SCALE = 1 / 32768


class EchoCanceller:
    """One session's echo guard and the conversions around it.

    Args:
        input_rate: the rate of the audio the session receives (the guard works at it).
    """

    def __init__(self, input_rate: int) -> None:
        self.input_rate = input_rate
        self.guard = EchoGuard(input_rate)
        self._resample: Resample | None = None

    def sent(self, audio: OutputAudio) -> None:
        """Reply audio was sent to the client: it is what may come back."""
        samples = InputFormat(AudioEncoding(audio.format), audio.sample_rate).decode(audio.audio)
        if audio.sample_rate != self.input_rate:
            if self._resample is None or self._resample.input_rate != audio.sample_rate:
                self._resample = Resample(audio.sample_rate, self.input_rate)
            samples = self._resample.process(samples)
        self.guard.reference(float_to_pcm16_array(samples))

    def stopped(self) -> None:
        """The reply playing was stopped: what was sent and not played never plays."""
        self.guard.stop_playback()

    def clean(self, samples: Samples) -> tuple[Samples, bool]:
        """One incoming frame without the session's echo, and whether the caller is in it
        over the session's speech."""
        result = self.guard.process(float_to_pcm16_array(samples))
        if not result.active:
            return samples, False
        cleaned = result.audio.astype(np.float32) * _PCM16_SCALE
        return cleaned, result.near_end
