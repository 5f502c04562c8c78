"""Spoken audio in a session's output format: resampled (soxr) and encoded per reply.

The engine speaks PCM16 at its own rate (Piper 22,050 Hz, Kokoro 24,000 Hz); the client
asked for ``output_sample_rate`` and ``output_audio_format``. One converter per reply:
its resampler keeps filter state across chunks, so the audio is the same however the
engine cut it, and no state is shared between sessions or replies.
"""

from __future__ import annotations

from theo.audio.g711 import pcm16_to_alaw, pcm16_to_ulaw
from theo.audio.pcm import Samples, float_to_pcm16_array, pcm16_to_float
from theo.preprocessing.resample import Resample
from theo.session.audio_format import AudioEncoding


class OutputConverter:
    """Converts one reply's PCM16 chunks to the session's output encoding and rate.

    Args:
        input_rate: the engine's sample rate.
        output_rate: the rate the client asked for.
        encoding: the client's output encoding.
    """

    def __init__(self, input_rate: int, output_rate: int, encoding: AudioEncoding) -> None:
        self.output_rate = output_rate
        self.encoding = encoding
        self._resample = Resample(input_rate, output_rate)
        self._pending_byte = b""

    @property
    def bytes_per_second(self) -> int:
        """Bytes of one second of output audio."""
        return self.output_rate * (2 if self.encoding is AudioEncoding.PCM16 else 1)

    def convert(self, pcm16: bytes) -> bytes:
        """The next chunk in the output format (may be empty while soxr fills up)."""
        data = self._pending_byte + pcm16
        whole = len(data) - len(data) % 2
        self._pending_byte = data[whole:]
        return self._encode(self._resample.process(pcm16_to_float(data[:whole])))

    def flush(self) -> bytes:
        """The samples the resampler still holds, at the end of the reply."""
        return self._encode(self._resample.flush())

    def _encode(self, samples: Samples) -> bytes:
        pcm = float_to_pcm16_array(samples)
        if self.encoding is AudioEncoding.G711_ULAW:
            return pcm16_to_ulaw(pcm)
        if self.encoding is AudioEncoding.G711_ALAW:
            return pcm16_to_alaw(pcm)
        return pcm.astype("<i2").tobytes()
