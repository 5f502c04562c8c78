"""Where long audio is cut into windows (at pauses between sentences, not where a window
fills) and which speech a window's decode left out."""

from __future__ import annotations

import numpy as np
import pytest

from theo.engines.stt.backend import SegmentDecode
from theo.engines.stt.faster_whisper_backend import _Decoded
from theo.engines.stt.long_audio_plan import (
    SAMPLE_RATE,
    Region,
    Tail,
    pack_windows,
    padded_regions,
    plan_long_audio,
    without_repeated_opening,
)
from theo.types import Word

S = SAMPLE_RATE


def _regions(*spans: tuple[float, float, float]) -> list[Region]:
    """(start s, end s, pause after s) as regions."""
    return [Region(round(a * S), round(b * S), pause) for a, b, pause in spans]


def test_speech_is_padded_by_400_ms_and_close_spans_meet_halfway() -> None:
    speech = [(round(1.0 * S), round(2.0 * S)), (round(2.5 * S), round(3.0 * S))]
    speech.append((round(5.0 * S), round(6.0 * S)))

    regions = padded_regions(speech, total=round(6.2 * S))

    assert [(r.start / S, r.end / S) for r in regions] == [
        (0.6, 2.25),  # 0.5 s to the next span: they meet halfway
        (2.25, 3.4),
        (4.6, 6.2),  # clipped to the audio's end
    ]
    assert [r.pause_after_s for r in regions] == [0.5, 2.0, 0.0]
    assert padded_regions([(round(0.1 * S), S)], total=2 * S)[0].start == 0


def test_a_window_ends_at_a_long_pause_in_its_second_half() -> None:
    # A 10 s window: greedy packing would end it after the 9.5 s region, mid-phrase; the
    # only long pause past half the window follows the region ending at 6 s.
    regions = _regions(
        (0.0, 4.0, 1.2),  # in the first half: too early to end a window however long
        (4.0, 6.0, 0.9),
        (6.0, 8.0, 0.2),
        (8.0, 9.5, 0.3),
        (9.5, 12.0, 0.4),
        (12.0, 20.0, 0.5),
    )

    assert pack_windows(regions, window=10 * S) == [2, 5]


def test_the_latest_long_pause_wins_over_an_earlier_longer_one() -> None:
    # Both pauses are between sentences; ending at the later one keeps the window fuller.
    regions = _regions(
        (0.0, 5.5, 1.5),
        (5.5, 8.0, 0.6),
        (8.0, 9.5, 0.2),
        (9.5, 12.0, 0.0),
    )

    assert pack_windows(regions, window=10 * S) == [2]


def test_without_a_long_pause_a_window_ends_at_the_longest_short_one() -> None:
    regions = _regions(
        (0.0, 5.5, 0.2),
        (5.5, 8.0, 0.4),
        (8.0, 9.5, 0.3),
        (9.5, 12.0, 0.0),
    )

    assert pack_windows(regions, window=10 * S) == [2]


def test_without_a_pause_in_its_second_half_a_window_ends_where_it_fills() -> None:
    regions = _regions((0.0, 2.0, 3.0), (2.0, 8.0, 0.0), (8.0, 12.0, 0.0))

    assert pack_windows(regions, window=10 * S) == [2]
    assert pack_windows(regions[:2], window=10 * S) == []


def test_the_plan_joins_the_kept_audio_and_maps_times_back() -> None:
    audio = np.arange(70 * S, dtype=np.float32)
    # Speech 1-17 s, a 2 s pause, 19-27 s, a 0.3 s pause, 27.3-35 s, 20 s of silence, 55-62 s.
    speech = [(1 * S, 17 * S), (19 * S, 27 * S), (round(27.3 * S), 35 * S), (55 * S, 62 * S)]

    plan = plan_long_audio(audio, speech)

    assert plan is not None
    kept = [(0.6, 17.4), (18.6, 27.15), (27.15, 35.4), (54.6, 62.4)]
    assert plan.source_starts == tuple(round(a * S) for a, _ in kept)
    assert plan.audio.size == sum(round((b - a) * S) for a, b in kept)
    np.testing.assert_array_equal(plan.audio[: 5 * S], audio[round(0.6 * S) : round(5.6 * S)])
    # 16.8 + 8.55 s fill the first window and 8.25 more would overflow it: greedy packing
    # would end it at the 0.3 s pause; it ends at the 2 s one (16.8 s, past half a window).
    assert plan.clips == (
        {"start": 0.0, "end": 16.8},
        {"start": 16.8, "end": pytest.approx(16.8 + 8.55 + 8.25 + 7.8)},
    )
    assert plan.to_source_time(0.0) == pytest.approx(0.6)
    assert plan.to_source_time(16.8) == pytest.approx(18.6)
    assert plan.to_source_time(16.8, is_end=True) == pytest.approx(17.4)
    assert plan.to_source_time(16.8 + 8.55 + 8.25 + 1.0) == pytest.approx(55.6)


def test_no_speech_no_plan() -> None:
    assert plan_long_audio(np.zeros(40 * S, dtype=np.float32), []) is None


def test_a_windows_last_segment_and_the_speech_it_left_out_are_decoded_again() -> None:
    audio = np.zeros(60 * S, dtype=np.float32)
    # Speech 1-20 s, a 2 s pause, 22-28 s; a 2 s pause; 30-40 s.
    speech = [(1 * S, 20 * S), (22 * S, 28 * S), (30 * S, 40 * S)]
    plan = plan_long_audio(audio, speech)
    assert plan is not None
    first, second = plan.clips
    assert plan.speech[0] == pytest.approx((0.4, 19.4))

    # The first window's decode stopped 3 s before its last 6 s of speech ended; the
    # second's decode covered all of its speech.
    decoded = [(0.4, 19.4), (20.2, first["end"] - 3.4), (second["start"] + 0.4, 40.0)]
    tails = plan.abandoned(decoded)

    # From the start of the window's last segment (its end may cut a word) to its end,
    # read from a second before that start (which may cut a word too).
    assert tails == [Tail(pytest.approx(19.2), pytest.approx(20.2), first["end"])]
    # A last segment opening its window is read from the window's start.
    assert plan.abandoned([(0.4, 10.0)]) == [Tail(0.0, 0.4, first["end"])]
    # A window with nothing decoded is not decoded again, nor is one whose decode left
    # less than half a second of speech (here the second window's last 0.3 s).
    assert plan.abandoned([(second["start"], second["end"] - 0.7)]) == []


def test_a_tails_words_before_its_start_are_left_to_the_segments_before() -> None:
    plan = plan_long_audio(np.zeros(40 * S, dtype=np.float32), [(1 * S, 20 * S), (22 * S, 28 * S)])
    assert plan is not None
    tail = Tail(read_from=10.0, start=11.0, end=20.0)
    words = (
        Word(" and", 0.6, 1.1, 0.9),
        Word(" rather", 1.1, 1.5, 0.9),
        Word(" selfish", 1.5, 2.0, 0.9),
    )
    result = SegmentDecode(text="and rather selfish", words=words, language="en", confidence=0.9)

    recovered = _Decoded.of_tail(result, plan, tail)

    # "and" (10.6-11.1 s) lies mostly before the tail's start: the segment before has it.
    assert recovered is not None
    assert recovered.recovered
    assert recovered.segment.text == " rather selfish"
    assert recovered.segment.start == plan.to_source_time(11.1)
    assert recovered.segment.end == plan.to_source_time(12.0, is_end=True)
    only_context = SegmentDecode(text="and", words=words[:1], language="en", confidence=0.9)
    assert _Decoded.of_tail(only_context, plan, tail) is None


def test_a_tail_loses_the_words_it_repeats_from_the_text_before() -> None:
    before = " It was the spring of hope, it"
    assert without_repeated_opening(before, " it was the winter") == " was the winter"
    assert without_repeated_opening(" than he was.", " He was, he said.") == " he said."
    assert without_repeated_opening(" than he was.", " He might even") == " He might even"
    # A tail is never emptied: a lone repeated word may be all it heard.
    assert without_repeated_opening(" he might have", " have") == " have"
