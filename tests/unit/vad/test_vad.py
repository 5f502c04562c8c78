"""Voice-activity detection on real speech with the real Silero model.

The reference boundaries of ``en_librivox.wav`` come from how the fixture is built
(``scripts/make_fixtures.py``): five LibriVox clips of 7.10, 2.99, 5.30, 6.05 and 3.29 s
joined by 0.6 s of digital silence. Each clip has ~0.25-0.3 s of recorded room noise
(about -55 dBFS) before its first word and some after its last, so the speech inside a clip
is located from its level: the first and last 10 ms frame within 25 dB of the clip's
loudest frame.
"""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from itertools import pairwise, zip_longest
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from faster_whisper.utils import get_assets_path
from faster_whisper.vad import SileroVADModel

from tests.helpers.audio import read_wav
from tests.helpers.server import FIXTURES
from theo.errors import InvalidRequestError
from theo.vad import (
    SAMPLE_RATE,
    THRESHOLDS,
    WINDOW_SAMPLES,
    EnergyPreFilter,
    EnergyVerdict,
    Sensitivity,
    SileroModel,
    VADDetector,
    VADEvent,
    VADModelNotFoundError,
    default_model_path,
    shared_model,
)

CLIP_SECONDS = (7.10, 2.99, 5.30, 6.05, 3.29)
GAP_SECONDS = 0.6
FRAME = 320  # 20 ms at 16 kHz
START_TOLERANCE_MS = 150
# Silero stays above the 0.35 keep threshold for ~50-100 ms after a last word (longer over a
# trailing breath), and the end is reported at the end of that window.
END_EARLY_MS = 150
END_LATE_MS = 350

Audio = npt.NDArray[np.float32]


def load(name: str) -> Audio:
    samples, rate = read_wav(FIXTURES / name)
    assert rate == SAMPLE_RATE
    return samples.astype(np.float32) / 32768.0


@pytest.fixture(scope="module")
def model() -> SileroModel:
    return SileroModel()


@pytest.fixture(scope="module")
def librivox() -> Audio:
    return load("en_librivox.wav")


def clip_spans() -> list[tuple[int, int]]:
    """Sample ranges of the five clips inside ``en_librivox.wav``."""
    spans: list[tuple[int, int]] = []
    start = 0.0
    for seconds in CLIP_SECONDS:
        spans.append((round(start * SAMPLE_RATE), round((start + seconds) * SAMPLE_RATE)))
        start += seconds + GAP_SECONDS
    return spans


def speech_bounds_ms(audio: Audio, span: tuple[int, int]) -> tuple[float, float]:
    """First and last 10 ms frame of a clip within 25 dB of its loudest frame, in ms."""
    first, last = span
    frames = audio[first:last][: (last - first) // 160 * 160].reshape(-1, 160).astype(np.float64)
    frames -= frames.mean(axis=1, keepdims=True)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    active = np.flatnonzero(level > level.max() - 25.0)
    return (first / 16 + active[0] * 10.0, first / 16 + (active[-1] + 1) * 10.0)


def frames_of(audio: Audio, sizes: Iterator[int]) -> Iterator[Audio]:
    position = 0
    while position < audio.size:
        size = next(sizes)
        yield audio[position : position + size]
        position += size


def fixed(size: int) -> Iterator[int]:
    while True:
        yield size


def irregular(seed: int) -> Iterator[int]:
    rng = np.random.default_rng(seed)
    while True:
        yield int(rng.choice([0, 1, 160, 511, 512, 513, 1000, 4000]))


def detect(
    audio: Audio,
    model: SileroModel,
    sensitivity: Sensitivity = "normal",
    sizes: Iterator[int] | None = None,
) -> list[VADEvent]:
    detector = VADDetector(sensitivity, model=model)
    events: list[VADEvent] = []
    for frame in frames_of(audio, sizes or fixed(FRAME)):
        events += detector.process(frame)
    return events + detector.flush()


def pairs(events: Sequence[VADEvent]) -> list[tuple[int, int]]:
    """(start_ms, end_ms) of each segment, checking that events alternate start/end."""
    kinds = [event.kind for event in events]
    assert kinds == ["speech_start", "speech_end"] * (len(events) // 2), kinds
    return [(events[i].ms, events[i + 1].ms) for i in range(0, len(events), 2)]


def attenuate(audio: Audio, decibels: float) -> Audio:
    return (audio * np.float32(10 ** (-decibels / 20))).astype(np.float32)


def test_streaming_windows_match_faster_whisper_batched_call(
    model: SileroModel, librivox: Audio
) -> None:
    # faster-whisper's SileroVADModel sends every window in one run(): the v6 export treats
    # the first axis as time (h/c flow from row to row) and prepends to each row the last
    # 64 samples of the row before. One window per call with h/c and context carried must
    # therefore reproduce it.
    audio = librivox[: librivox.size // WINDOW_SAMPLES * WINDOW_SAMPLES]
    # The batched call writes zeros over the last 64 samples of its input (``context[-1] =
    # 0`` goes through a view), so it gets a copy, and its last window differs slightly.
    batched = np.asarray(SileroVADModel(str(default_model_path()))(audio.copy())).reshape(-1)
    classifier = model.classifier()
    streamed = np.array(
        [
            classifier.probability(audio[i : i + WINDOW_SAMPLES])
            for i in range(0, audio.size, WINDOW_SAMPLES)
        ]
    )
    assert streamed.shape == batched.shape == (847,)
    np.testing.assert_allclose(streamed[:-1], batched[:-1], atol=1e-5)
    assert abs(streamed[-1] - batched[-1]) < 0.05
    assert (streamed >= 0.5).sum() > 600  # the comparison is over real speech, not silence


@pytest.mark.parametrize("sensitivity", ["high", "normal"])
def test_prefilter_never_drops_a_window_silero_is_sure_of(
    model: SileroModel, librivox: Audio, sensitivity: Sensitivity
) -> None:
    prefilter = EnergyPreFilter(THRESHOLDS[sensitivity])
    classifier = model.classifier()
    verdicts: list[EnergyVerdict] = []
    for start in range(0, librivox.size - WINDOW_SAMPLES + 1, WINDOW_SAMPLES):
        window = librivox[start : start + WINDOW_SAMPLES]
        if classifier.probability(window) >= 0.9:
            verdicts.append(prefilter.classify(window))
    assert len(verdicts) > 500
    assert set(verdicts) == {EnergyVerdict.UNDECIDED}


def test_fixture_gaps_are_where_the_clip_lengths_put_them(librivox: Audio) -> None:
    spans = clip_spans()
    assert spans[-1][1] == librivox.size
    for (_, end), (next_start, _) in pairwise(spans):
        assert next_start - end == round(GAP_SECONDS * SAMPLE_RATE)
        assert not librivox[end:next_start].any()


def test_librivox_gives_five_segments_at_the_utterances(
    model: SileroModel, librivox: Audio
) -> None:
    segments = pairs(detect(librivox, model))
    spans = clip_spans()
    assert len(segments) == 5
    for index, ((start_ms, end_ms), span) in enumerate(zip(segments, spans, strict=True)):
        onset_ms, offset_ms = speech_bounds_ms(librivox, span)
        assert 150 <= onset_ms - span[0] / 16 <= 400  # leading room noise of the clip
        assert abs(start_ms - onset_ms) <= START_TOLERANCE_MS, (index, start_ms, onset_ms)
        assert -END_EARLY_MS <= end_ms - offset_ms <= END_LATE_MS, (index, end_ms, offset_ms)
        if index + 1 < len(spans):
            assert end_ms < spans[index + 1][0] / 16


def test_irregular_frames_give_identical_events(model: SileroModel, librivox: Audio) -> None:
    reference = detect(librivox, model)
    for seed in (1, 2):
        assert detect(librivox, model, sizes=irregular(seed)) == reference
    assert detect(librivox, model, sizes=fixed(librivox.size)) == reference


@pytest.mark.parametrize("sensitivity", ["high", "normal", "low"])
def test_silence_and_white_noise_give_no_events(
    model: SileroModel, sensitivity: Sensitivity
) -> None:
    rng = np.random.default_rng(7)
    noise = (rng.standard_normal(10 * SAMPLE_RATE) * 10 ** (-40 / 20)).astype(np.float32)
    silence = np.zeros(10 * SAMPLE_RATE, dtype=np.float32)
    for audio in (silence, noise):
        detector = VADDetector(sensitivity, model=model)
        events = [e for f in frames_of(audio, fixed(FRAME)) for e in detector.process(f)]
        assert events + detector.flush() == []
    quiet = VADDetector(sensitivity, model=model)
    quiet.process(silence)
    assert quiet.windows_prefiltered == quiet.windows_total


def test_white_noise_at_minus_40_dbfs_is_answered_by_the_prefilter(model: SileroModel) -> None:
    rng = np.random.default_rng(8)
    noise = (rng.standard_normal(5 * SAMPLE_RATE) * 10 ** (-40 / 20)).astype(np.float32)
    detector = VADDetector("normal", model=model)
    detector.process(noise)
    assert detector.windows_total == 5 * SAMPLE_RATE // WINDOW_SAMPLES
    assert detector.windows_prefiltered == detector.windows_total


def test_tone_is_not_speech(model: SileroModel) -> None:
    # A loud pure tone passes the pre-filter (its spectrum is the opposite of flat), so it is
    # Silero that rejects it: its probabilities stay near 0.01.
    t = np.arange(5 * SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    detector = VADDetector("high", model=model)
    events = [e for f in frames_of(tone, fixed(FRAME)) for e in detector.process(f)]
    assert events == []
    assert not detector.is_speech
    assert detector.windows_prefiltered == 0


def test_high_sensitivity_still_hears_speech_30_db_down_and_low_does_not(
    model: SileroModel, librivox: Audio
) -> None:
    quiet = attenuate(librivox, 30)
    high = pairs(detect(quiet, model, "high"))
    low = pairs(detect(quiet, model, "low"))
    assert len(high) == 5
    for (start_ms, _), span in zip(high, clip_spans(), strict=True):
        # The softest onset (clip 1, ~-62 dBFS here) is caught ~0.3 s late.
        assert abs(start_ms - speech_bounds_ms(librivox, span)[0]) <= 400
    assert low == []  # -30 dB speech sits mostly below low's -50 dBFS floor


def test_set_sensitivity_applies_from_the_next_window(model: SileroModel, librivox: Audio) -> None:
    quiet = attenuate(librivox, 30)
    switch_at = clip_spans()[2][0]  # between utterances 2 and 3
    detector = VADDetector("low", model=model)
    before = detector.process(quiet[:switch_at])
    detector.set_sensitivity("high")
    assert detector.sensitivity == "high"
    after = pairs(detector.process(quiet[switch_at:]) + detector.flush())
    assert before == []
    assert len(after) == 3
    for (start_ms, _), span in zip(after, clip_spans()[2:], strict=True):
        assert abs(start_ms - speech_bounds_ms(librivox, span)[0]) <= START_TOLERANCE_MS


def test_interleaved_detectors_match_sequential_runs(model: SileroModel, librivox: Audio) -> None:
    portuguese = load("pt_br_speech.wav")
    expected = (detect(librivox, model), detect(portuguese, model, "high"))
    first, second = VADDetector("normal", model=model), VADDetector("high", model=model)
    got: tuple[list[VADEvent], list[VADEvent]] = ([], [])
    a_frames, b_frames = frames_of(librivox, fixed(FRAME)), frames_of(portuguese, irregular(3))
    for a_frame, b_frame in zip_longest(a_frames, b_frames):
        if a_frame is not None:
            got[0].extend(first.process(a_frame))
        if b_frame is not None:
            got[1].extend(second.process(b_frame))
    got[0].extend(first.flush())
    got[1].extend(second.flush())
    assert got == expected


def test_detectors_on_threads_share_one_model(librivox: Audio) -> None:
    model = shared_model()
    assert shared_model() is model
    expected = detect(librivox, model)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda seed: detect(librivox, model, sizes=irregular(seed)), range(4))
        )
    assert results == [expected] * 4


def burst_in_room_noise(librivox: Audio, at_ms: int, burst_ms: int) -> Audio:
    """``burst_ms`` of speech cut at ``at_ms``, between 800 ms stretches of room noise."""
    room = np.tile(librivox[: 200 * 16], 4)  # recorded before the first word
    burst = librivox[at_ms * 16 : (at_ms + burst_ms) * 16]
    return np.concatenate([room, burst, room])


@pytest.mark.parametrize("sensitivity", ["high", "normal", "low"])
def test_a_150_ms_burst_does_not_trigger_and_400_ms_does(
    model: SileroModel, librivox: Audio, sensitivity: Sensitivity
) -> None:
    at_ms = 1000  # inside utterance 1: continuous loud speech
    assert detect(burst_in_room_noise(librivox, at_ms, 150), model, sensitivity) == []
    longer = pairs(detect(burst_in_room_noise(librivox, at_ms, 400), model, sensitivity))
    assert len(longer) == 1
    assert abs(longer[0][0] - 800) <= 64


def test_min_speech_rejects_most_short_bursts_over_many_cuts(
    model: SileroModel, librivox: Audio
) -> None:
    # Silero's score decays over ~30-100 ms after a sound stops, so a run of speech windows
    # outlasts its audio: a few 150 ms cuts still reach 8 windows (256 ms). Over cuts taken
    # every 170 ms through utterances 1 and 3, short ones mostly fail and long ones pass.
    def trigger_rate(burst_ms: int) -> float:
        cuts = [
            at_ms
            for first_ms, last_ms in ((300, 6700), (11600, 16300))
            for at_ms in range(first_ms, last_ms - burst_ms, 170)
        ]
        fired = [bool(detect(burst_in_room_noise(librivox, at, burst_ms), model)) for at in cuts]
        return sum(fired) / len(fired)

    assert trigger_rate(150) <= 0.25
    assert trigger_rate(400) >= 0.9


def test_portuguese_sentences_give_sane_segments(model: SileroModel) -> None:
    audio = load("pt_br_speech.wav")  # 4 sentences, 0.3 s of silence added at each end
    segments = pairs(detect(audio, model))
    duration_ms = audio.size / 16
    assert 3 <= len(segments) <= 5
    assert 250 <= segments[0][0] <= 550
    assert duration_ms - 700 <= segments[-1][1] <= duration_ms - 250
    for start_ms, end_ms in segments:
        assert end_ms - start_ms >= 250
    for (_, end_ms), (next_start_ms, _) in pairwise(segments):
        assert next_start_ms - end_ms >= 300


def test_flush_closes_an_open_segment_and_offsets_keep_counting(
    model: SileroModel, librivox: Audio
) -> None:
    detector = VADDetector(model=model)
    cut = 3 * SAMPLE_RATE + 100
    opened = detector.process(librivox[:cut])
    assert [e.kind for e in opened] == ["speech_start"]
    assert detector.is_speech
    assert detector.samples_processed == cut
    closed = detector.flush()
    assert [e.kind for e in closed] == ["speech_end"]
    assert opened[0].sample_offset < closed[0].sample_offset <= cut
    assert not detector.is_speech
    assert detector.flush() == []
    rest = pairs(detector.process(librivox[cut:]) + detector.flush())
    assert len(rest) == 5  # the rest of utterance 1, then utterances 2-5
    assert rest[0][0] >= cut // 16
    assert detector.samples_processed == librivox.size


def test_event_offsets_in_milliseconds() -> None:
    event = VADEvent("speech_start", 288 * 16)
    assert event.ms == 288
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.sample_offset = 0  # type: ignore[misc]


def test_bad_arguments_are_rejected(model: SileroModel) -> None:
    with pytest.raises(InvalidRequestError) as error:
        VADDetector("loud", model=model)  # type: ignore[arg-type]
    assert error.value.param == "vad_sensitivity"
    with pytest.raises(InvalidRequestError):
        VADDetector(min_silence_ms=-1, model=model)
    with pytest.raises(ValueError, match="16000"):
        VADDetector(sample_rate=8000, model=model)
    detector = VADDetector(model=model)
    with pytest.raises(InvalidRequestError):
        detector.set_sensitivity("max")  # type: ignore[arg-type]
    assert detector.sensitivity == "normal"
    with pytest.raises(ValueError, match="float"):
        detector.process(np.zeros(320, dtype=np.int16))
    with pytest.raises(ValueError, match="mono"):
        detector.process(np.zeros((2, 320), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        detector.process(np.full(320, np.nan, dtype=np.float32))
    assert detector.samples_processed == 0
    with pytest.raises(ValueError, match="512"):
        model.classifier().probability(np.zeros(320, dtype=np.float32))


def test_missing_model_file_gives_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(VADModelNotFoundError, match="not found"):
        SileroModel(tmp_path / "absent.onnx")
    monkeypatch.setattr(resources, "files", lambda package: tmp_path)
    with pytest.raises(VADModelNotFoundError, match=r"vendor_silero_vad\.sh"):
        default_model_path()


def test_shipped_model_is_the_one_faster_whisper_runs() -> None:
    """The vendored file is byte for byte faster-whisper's, as ``assets/NOTICE`` states."""
    shipped = default_model_path()
    assert shipped.parent.name == "assets" and shipped.parent.parent.name == "vad"
    upstream = Path(get_assets_path()) / shipped.name
    assert shipped.read_bytes() == upstream.read_bytes()
    notice = (shipped.parent / "NOTICE").read_text()
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() in notice


def test_vad_never_imports_an_stt_engine() -> None:
    script = (
        "import sys\n"
        "import numpy as np\n"
        "import theo.vad\n"
        "assert 'onnxruntime' not in sys.modules\n"
        "detector = theo.vad.VADDetector()\n"
        "detector.process(np.zeros(16000, dtype=np.float32))\n"
        "print(theo.vad.default_model_path())\n"
        "assert not {'faster_whisper', 'ctranslate2'} & set(sys.modules), sys.modules.keys()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("theo/vad/assets/silero_vad_v6.onnx")


class _ScriptedClassifier:
    """Returns the given speech probabilities, one per window, then 0."""

    def __init__(self, scores: Sequence[float]) -> None:
        self._scores = iter(scores)

    def probability(self, window: Audio) -> float:
        return next(self._scores, 0.0)

    def skip(self, window: Audio) -> None:
        next(self._scores, None)

    def reset(self) -> None:
        pass


class _ScriptedModel:
    def __init__(self, scores: Sequence[float]) -> None:
        self._scores = scores

    def classifier(self) -> _ScriptedClassifier:
        return _ScriptedClassifier(self._scores)


def scripted_events(scores: Sequence[float], silent: Sequence[int] = ()) -> list[VADEvent]:
    """Events of a normal-sensitivity detector whose Silero scores are ``scores``, over a
    loud tone the energy pre-filter passes to it, except the ``silent`` windows (digital
    silence, which the pre-filter rules out)."""
    windows = len(scores) + 12  # then 384 ms at 0: the end of speech
    t = np.arange(windows * WINDOW_SAMPLES) / SAMPLE_RATE
    tone = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    for window in silent:
        tone[window * WINDOW_SAMPLES : (window + 1) * WINDOW_SAMPLES] = 0
    detector = VADDetector(model=_ScriptedModel(scores))  # type: ignore[arg-type]
    return detector.process(tone)


def test_a_short_dip_inside_a_run_neither_counts_nor_breaks_it() -> None:
    # JFK's "ask ... not" heard at 8 kHz: four windows over 0.5, five between the keep
    # threshold (0.35) and 0.5, four over 0.5 again: 8 speech windows, a 250 ms run.
    events = scripted_events([0.6] * 4 + [0.4] * 5 + [0.6] * 4)
    assert [(e.kind, e.sample_offset) for e in events] == [
        ("speech_start", 0),
        ("speech_end", 13 * WINDOW_SAMPLES),
    ]
    # The dip windows do not count: 4 + 3 speech windows stay short of 8.
    assert scripted_events([0.6] * 4 + [0.4] * 5 + [0.6] * 3) == []
    # A dip longer than 7 windows breaks the run.
    assert scripted_events([0.6] * 4 + [0.4] * 8 + [0.6] * 4) == []
    assert len(scripted_events([0.6] * 4 + [0.4] * 7 + [0.6] * 4)) == 2


def test_a_run_survives_silero_doubting_for_96_ms_but_not_a_window_ruled_out() -> None:
    # Piper's "My phone" at the very start of an 8 kHz call: Silero scores the first words
    # 0.2-0.58, dropping under the keep threshold (0.35) for single windows.
    opening = [0.25, 0.41, 0.36, 0.53, 0.38, 0.40, 0.20, 0.58, 0.57, 0.49, 0.41, 0.33]
    events = scripted_events(opening + [0.41, 0.49] + [0.7] * 5)
    assert [(e.kind, e.ms) for e in events] == [("speech_start", 96), ("speech_end", 608)]
    # Up to 3 windows in a row under the keep threshold (Silero's own 100 ms), not 4.
    assert len(scripted_events([0.6] * 4 + [0.2] * 3 + [0.6] * 4)) == 2
    assert scripted_events([0.6] * 4 + [0.2] * 4 + [0.6] * 4) == []
    # A window the energy pre-filter rules out is not Silero doubting: it breaks the run.
    assert scripted_events([0.6] * 4 + [0.4] * 3 + [0.6] * 4, silent=[5]) == []
