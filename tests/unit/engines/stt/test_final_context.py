"""FinalContext: which earlier finals a final is decoded behind, and what is kept of it."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import numpy as np
import numpy.typing as npt
import pytest

from theo.engines.stt.backend import SegmentDecode, SegmentOptions
from theo.engines.stt.final_context import FinalContext
from theo.engines.stt.pause_anchor import PauseAnchor
from theo.engines.stt.priority_executor import PriorityExecutor
from theo.types import Word

Audio = npt.NDArray[np.float32]
RATE = 16_000


def second(value: float = 0.1) -> Audio:
    return np.full(RATE, value, dtype=np.float32)


class Echo:
    """Reads the prefix over the context and "new" in the last second (with probability
    ``sure_alone`` when decoded without a prefix, ``sure_behind`` with one)."""

    def __init__(
        self,
        prefix_words: list[str] | None = None,
        *,
        sure_alone: float = 0.5,
        sure_behind: float = 0.5,
    ) -> None:
        self.calls: list[tuple[Audio, SegmentOptions]] = []
        self.prefix_words = prefix_words
        self.sure_alone = sure_alone
        self.sure_behind = sure_behind

    def decode_segment(self, audio: Audio, options: SegmentOptions) -> SegmentDecode:
        self.calls.append((audio, options))
        end = audio.size / RATE
        said = [] if not options.prefix else self.prefix_words or options.prefix.split()
        words = [Word(f" {w}", 0.1 * i, 0.1 * i + 0.05, 0.9) for i, w in enumerate(said)]
        sure = self.sure_behind if options.prefix else self.sure_alone
        words.append(Word(" new" if options.prefix else " alone", end - 0.6, end - 0.2, sure))
        return SegmentDecode(" ".join(w.word.strip() for w in words), tuple(words), "en", 0.7)


def decode(context: FinalContext, backend: Echo, audio: Audio) -> SegmentDecode:
    return context.decoder(backend)(audio, SegmentOptions(final=True))  # type: ignore[arg-type]


def test_the_latest_finals_within_the_budget_are_the_context() -> None:
    context = FinalContext(2.5)
    for text in ("one.", "two.", "three."):
        context.remember(second(), text)
    backend = Echo()
    result = decode(context, backend, second(0.5))

    audio, options = backend.calls[0]
    assert options.prefix == "two. three."
    assert audio.size == 3 * RATE and audio[-1] == np.float32(0.5)
    assert result.text == "new"
    assert [(round(w.start, 3), round(w.end, 3)) for w in result.words] == [(0.4, 0.8)]


def test_a_final_longer_than_the_budget_clears_the_context() -> None:
    context = FinalContext(1.5)
    context.remember(second(), "one.")
    context.remember(np.zeros(2 * RATE, dtype=np.float32), "a long final.")
    backend = Echo()
    decode(context, backend, second())
    assert backend.calls[0][1].prefix is None
    assert backend.calls[0][0].size == RATE


def test_words_after_the_prefix_are_found_by_time_when_the_words_differ() -> None:
    """The engine split the prefix otherwise ("ill disposed" for "ill-disposed")."""
    context = FinalContext(3.0)
    context.remember(second(), "ill-disposed.")
    backend = Echo(prefix_words=["ill", "disposed."])
    result = decode(context, backend, second())
    assert result.text == "new"


def test_context_and_segment_stay_within_seven_seconds() -> None:
    """Each prefix word is a decoder step: a long segment, with context of its own, gets
    less context or none."""
    context = FinalContext(6.0)
    for text in ("one.", "two.", "three."):
        context.remember(second(), text)
    backend = Echo()
    for seconds in (1.0, 4.5, 6.5):
        decode(context, backend, np.zeros(round(seconds * RATE), dtype=np.float32))
    in_context = [(audio, options) for audio, options in backend.calls if options.prefix]
    assert [options.prefix for _, options in in_context] == ["one. two. three.", "two. three."]
    assert in_context[1][0].size == 6 * RATE + RATE // 2
    # The 6.5 s segment has no context: decoded once, alone.
    assert [options.prefix for _, options in backend.calls].count(None) == 3
    assert backend.calls[-1][1].prefix is None and backend.calls[-1][0].size == 6.5 * RATE


def test_a_final_in_context_is_also_decoded_alone() -> None:
    context = FinalContext(3.0)
    context.remember(second(), "one.")
    backend = Echo()
    result = decode(context, backend, second())
    assert [options.prefix for _, options in backend.calls] == ["one.", None]
    assert result.text == "new"  # equally sure: the context's reading stays


def test_the_reading_whisper_is_surer_of_wins() -> None:
    """A misheard word in the prefix primes the next final ("10 of close" -> "7 of
    close"); a short segment alone lacks context ("Everfired"): the surer reading wins."""
    context = FinalContext(3.0)
    context.remember(second(), "ten of close.")
    assert decode(context, Echo(sure_alone=0.9, sure_behind=0.6), second()).text == "alone"
    assert decode(context, Echo(sure_alone=0.4, sure_behind=0.6), second()).text == "new"


def test_a_final_with_a_pause_anchor_is_decoded_behind_it_only() -> None:
    context = FinalContext(3.0)
    context.remember(second(), "one.")
    anchor = PauseAnchor(0.5, (Word(" five", 0.1, 0.3, 0.9),))
    backend = Echo(sure_alone=0.99)
    result = context.decoder(backend, anchor)(second(), SegmentOptions(final=True))  # type: ignore[arg-type]
    assert [options.prefix for _, options in backend.calls] == ["one. five"]
    assert result.text == "five new"


class Threads(Echo):
    """An Echo that records which thread decoded each reading; the reading behind a prefix
    waits (at most 5 s) for the one alone to start, so side by side they overlap."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: dict[str, str] = {}
        self.alone_started = threading.Event()

    def decode_segment(self, audio: Audio, options: SegmentOptions) -> SegmentDecode:
        reading = "behind" if options.prefix else "alone"
        self.threads[reading] = threading.current_thread().name
        if options.prefix:
            self.alone_started.wait(5)
        else:
            self.alone_started.set()
        return super().decode_segment(audio, options)


def decode_on_lanes(backend: Echo, lanes: int) -> SegmentDecode:
    """A final behind "one." decoded on a lane of an executor with ``lanes`` lanes, its
    second reading queued on the same executor."""
    context = FinalContext(3.0)
    context.remember(second(), "one.")
    executor = PriorityExecutor("lane", lanes=lanes)
    try:
        decoder = context.decoder(backend, beside=executor.submit_urgent)  # type: ignore[arg-type]
        return executor.submit_urgent(decoder, second(), SegmentOptions(final=True)).result(10)
    finally:
        executor.shutdown()


def test_with_a_free_lane_the_two_readings_run_side_by_side() -> None:
    backend = Threads()
    result = decode_on_lanes(backend, lanes=2)
    assert backend.alone_started.is_set()
    assert backend.threads["alone"] != backend.threads["behind"]
    assert result.text == "new"


def test_without_a_free_lane_the_final_reads_alone_itself() -> None:
    """Finals holding every lane must not wait for a lane to take their second reading."""
    backend = Echo(sure_alone=0.9)
    result = decode_on_lanes(backend, lanes=1)
    assert [options.prefix for _, options in backend.calls] == ["one.", None]
    assert result.text == "alone"


def test_a_failed_first_reading_withdraws_the_queued_second() -> None:
    class Failing(Echo):
        def decode_segment(self, audio: Audio, options: SegmentOptions) -> SegmentDecode:
            if options.prefix:
                raise RuntimeError("engine failed")
            return super().decode_segment(audio, options)

    context = FinalContext(3.0)
    context.remember(second(), "one.")
    queued: Future[SegmentDecode] = Future()
    decoder = context.decoder(Failing(), beside=lambda call: queued)
    with pytest.raises(RuntimeError, match="engine failed"):
        decoder(second(), SegmentOptions(final=True))
    assert queued.cancelled()


def test_a_final_with_a_pause_anchor_queues_nothing_beside() -> None:
    context = FinalContext(3.0)
    context.remember(second(), "one.")
    anchor = PauseAnchor(0.5, (Word(" five", 0.1, 0.3, 0.9),))
    queued: list[object] = []
    decoder = context.decoder(Echo(), anchor, beside=queued.append)  # type: ignore[arg-type]
    assert decoder(second(), SegmentOptions(final=True)).text == "five new"
    assert queued == []
