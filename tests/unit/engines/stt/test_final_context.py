"""FinalContext: which earlier finals a final is decoded behind, and what is kept of it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from theo.engines.stt.backend import SegmentDecode, SegmentOptions
from theo.engines.stt.final_context import FinalContext
from theo.types import Word

Audio = npt.NDArray[np.float32]
RATE = 16_000


def second(value: float = 0.1) -> Audio:
    return np.full(RATE, value, dtype=np.float32)


class Echo:
    """Reads the prefix over the context and "new" in the last second."""

    def __init__(self, prefix_words: list[str] | None = None) -> None:
        self.calls: list[tuple[Audio, SegmentOptions]] = []
        self.prefix_words = prefix_words

    def decode_segment(self, audio: Audio, options: SegmentOptions) -> SegmentDecode:
        self.calls.append((audio, options))
        end = audio.size / RATE
        said = (
            self.prefix_words if self.prefix_words is not None else (options.prefix or "").split()
        )
        words = [Word(f" {w}", 0.1 * i, 0.1 * i + 0.05, 0.9) for i, w in enumerate(said)]
        words.append(Word(" new", end - 0.6, end - 0.2, 0.5))
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
    assert [options.prefix for _, options in backend.calls] == [
        "one. two. three.",
        "two. three.",
        None,
    ]
    assert backend.calls[1][0].size == 6 * RATE + RATE // 2
