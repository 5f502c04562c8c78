"""FasterWhisperBackend.decode_segment on real speech: the short encoder window's accuracy."""

from __future__ import annotations

import threading
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests.conftest import TINY_EN
from tests.helpers.server import FIXTURES
from tests.helpers.wer import normalize
from theo.engines.stt import faster_whisper_backend as fwb
from theo.engines.stt.backend import SegmentOptions
from theo.manifest import EngineConfig
from theo.types import TranscribeParams

pytestmark = pytest.mark.e2e

SAMPLE_RATE = 16_000
UTTERANCES_S = (7.10, 2.99, 5.30, 6.05, 3.29)
GAP_S = 0.6


def utterances() -> list[npt.NDArray[np.float32]]:
    with wave.open(str(FIXTURES / "en_librivox.wav"), "rb") as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    audio = pcm.astype(np.float32) / 32768.0
    clips, start = [], 0
    for seconds in UTTERANCES_S:
        clips.append(audio[start : start + round(seconds * SAMPLE_RATE)])
        start += round((seconds + GAP_S) * SAMPLE_RATE)
    return clips


@pytest.fixture(scope="module")
def backend(theo_home: Path) -> fwb.FasterWhisperBackend:
    engine = fwb.FasterWhisperBackend()
    engine.load(theo_home / "models" / TINY_EN, EngineConfig(cpu_threads=2))
    return engine


def test_encoder_window_is_the_audio_plus_a_second_within_10_to_30_s() -> None:
    assert fwb._encoder_frames(50) == 1_000
    assert fwb._encoder_frames(899) == 1_000
    assert fwb._encoder_frames(1_234) == 1_400
    assert fwb._encoder_frames(2_950) == 3_000


def test_short_encoder_window_transcribes_like_the_full_30_s_window(
    backend: fwb.FasterWhisperBackend,
) -> None:
    clips = utterances()
    short = [backend.decode_segment(clip, SegmentOptions(language="en")) for clip in clips]
    # The batch path decodes with Whisper's standard 30 s window, same beam.
    params = TranscribeParams(language="en")
    full = [backend.transcribe(clip, params, threading.Event()) for clip in clips]

    assert [normalize(d.text) for d in short] == [normalize(r.text) for r in full]
    assert "dashwood had then leisure" in normalize(short[0].text)
    for decode, seconds in zip(short, UTTERANCES_S, strict=True):
        assert decode.words, decode.text
        assert 0.0 <= decode.words[0].start < decode.words[-1].end <= seconds + 0.1


def test_words_are_spread_evenly_when_alignment_is_unavailable(
    backend: fwb.FasterWhisperBackend,
) -> None:
    from faster_whisper.tokenizer import Tokenizer  # noqa: PLC0415 - engine import

    model = backend._model
    tokenizer = Tokenizer(model.hf_tokenizer, False, "transcribe", "en")
    words = fwb._evenly_timed(tokenizer, tokenizer.encode(" Hello there, world."), 3.0, 0.5)

    assert [w.word for w in words] == [" Hello", " there,", " world."]
    assert [(w.start, w.end) for w in words] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
