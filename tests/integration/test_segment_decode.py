"""FasterWhisperBackend.decode_segment on real speech: the short encoder window's accuracy."""

from __future__ import annotations

import threading
import wave
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from tests.conftest import TINY_EN
from tests.helpers.audio import continuous_speech
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


def test_a_repetition_loop_is_a_short_pattern_said_six_times_or_a_decode_at_its_cap() -> None:
    assert fwb._repeats([7, 1, 2] + [5] * 6)
    assert not fwb._repeats([7] + [5] * 5 + [8])
    assert fwb._repeats([9, *([3, 4] * 6), 9])
    assert not fwb._repeats([3, 4] * 5)
    assert fwb._repeats([1, 2, 3, 4] * 6)
    assert not fwb._repeats([1, 2, 3, 4, 5] * 6)  # a longer phrase may be repeated
    assert fwb._looped([1, 2, 3], 3, "a b c")
    assert fwb._looped([1, 2], 100, "the dog " * 20)  # compresses like a loop
    assert not fwb._looped([1, 2, 3], 100, "He was not an ill-disposed young man.")


def test_a_greedy_pass_stuck_in_a_loop_is_decoded_again_with_the_beam(
    backend: fwb.FasterWhisperBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The audio left after a long segment was trimmed, starting mid-sentence; a partial
    # pass over it (greedy) used to read "He was not an old-s-y-y-y-y-y-..." and lose the
    # rest, and the loop, once committed, became the final's prefix.
    pcm = np.frombuffer(continuous_speech(FIXTURES / "en_librivox.wav"), dtype="<i2")
    start = round((21.6 + 4.1) * SAMPLE_RATE)
    audio = pcm[start : start + 11 * SAMPLE_RATE].astype(np.float32) / 32768.0
    options = SegmentOptions(
        language="en",
        prompt="And Mr. John Dashwood had then leisure to consider how",
        beam_size=1,
    )

    # Whether tiny.en's greedy pass loops on this audio depends on the CPU (the kernels
    # round differently), so the first greedy decode is flagged as a loop here: the pass
    # must then be decoded again with the model's beam and come out whole.
    beams: list[int] = []
    generate, looped = backend._generate, fwb._looped

    def spied(window: Any, requests: Any, caps: Any, beam_size: int, **extra: Any) -> Any:
        beams.append(beam_size)
        return generate(window, requests, caps, beam_size, **extra)

    monkeypatch.setattr(backend, "_generate", spied)
    monkeypatch.setattr(fwb, "_looped", lambda *a: len(beams) == 1 or looped(*a))
    decode = backend.decode_segment(audio, options)

    assert beams == [1, 5]
    assert "young man unless to be rather cold" in normalize(decode.text), decode.text
    assert "-y-y" not in decode.text


def test_the_loop_a_greedy_pass_read_is_recognised_as_one(
    backend: fwb.FasterWhisperBackend,
) -> None:
    from faster_whisper.tokenizer import Tokenizer  # noqa: PLC0415 - engine import

    tokenizer = Tokenizer(backend._model.hf_tokenizer, False, "transcribe", "en")
    text = " He was not an old-s" + "-y" * 60
    tokens = tokenizer.encode(text)
    assert fwb._looped(tokens, 224, text)
    sentence = " He was not an ill-disposed young man, unless to be rather cold-hearted."
    assert not fwb._looped(tokenizer.encode(sentence), 224, sentence)


def test_a_finals_two_readings_share_one_call_and_decode_as_alone(
    backend: fwb.FasterWhisperBackend,
) -> None:
    """A final behind its context and the same final alone (the two readings of
    final_context, decoded one after the other there) can share one batched call: same
    encoder window (the final's 15 s floor) and beam."""
    clips = utterances()
    context = clips[0][: 3 * SAMPLE_RATE]
    passes = [
        (
            np.concatenate([context, clips[1]]),
            SegmentOptions(language="en", final=True, prefix="And Mr. John Dashwood had then"),
        ),
        (clips[1], SegmentOptions(language="en", final=True)),
    ]
    keys = [backend._batch_key(audio, options) for audio, options in passes]
    assert keys[0] == keys[1] == (1_500, backend._beam_size, "en", None)
    alone = [backend.decode_segment(audio, options) for audio, options in passes]
    assert backend.decode_segments(passes) == alone
    assert normalize(alone[1].text).startswith("he was not"), alone[1].text


def test_batched_passes_decode_exactly_as_passes_decoded_alone(
    backend: fwb.FasterWhisperBackend,
) -> None:
    # Four streams' greedy partial passes of different lengths, one with a prefix of
    # committed words; and two decoded alone: one with a prompt (CTranslate2 batches
    # only prompts of one length), one over 9 s (a wider encoder window).
    clips = utterances()
    passes = [
        (clips[0][: 4 * SAMPLE_RATE], SegmentOptions(language="en", beam_size=1)),
        (clips[1], SegmentOptions(language="en", beam_size=1)),
        (clips[2], SegmentOptions(language="en", beam_size=1, prefix="Unless to be")),
        (clips[3], SegmentOptions(language="en", beam_size=1)),
        (clips[4], SegmentOptions(language="en", beam_size=1, prompt="A novel.")),
        (np.concatenate(clips[:2]), SegmentOptions(language="en", beam_size=1)),
    ]
    alone = [backend.decode_segment(audio, options) for audio, options in passes]
    keys = [backend._batch_key(audio, options) for audio, options in passes]
    assert keys[:4] == [(1_000, 1, "en", None)] * 4
    assert keys[4] != keys[0] and keys[5] != keys[0]

    # The four that share a window go through one batched encode and generation.
    assert backend._decode_batch(passes[:4], 1_000, 1, "en") == alone[:4]
    assert backend.decode_segments(passes) == alone
    # The words, not the exact decode: a borderline first word ("And") comes and goes with
    # the CPU's rounding.
    texts = [normalize(d.text) for d in alone[:4]]
    assert "john dashwood had then leisure" in texts[0], texts
    assert texts[1].startswith("he was not"), texts
    assert texts[2].startswith("unless to be rather cold"), texts
    assert texts[3].startswith("had he married"), texts
