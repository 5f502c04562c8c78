"""Words heard before a pause inside a segment, kept for the segment's later decodes.

A segment held open across a long pause (the session waits longer while a number is
being dictated) is decoded whole for its final, and Whisper may leave out everything
before the pause: the spoken cards "five five", a second of silence, then "eight of
spades four of clubs seven of hearts" came out as "8 of spades, 4 of close, 7 of hearts."
although the early final at the pause had heard "5. 5.", and, without them, Whisper
filled the time by saying the rest twice. The words decoded at a pause the speaker
resumed after are the anchor: later final decodes of the segment force its text as the
decoder's prefix (see :mod:`theo.engines.stt.final_context`), so Whisper decodes only what
came after the pause, and a decode that still has no word before the pause, and does not
start with the anchor's words, gets them back in front (:meth:`PauseAnchor.restore`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from theo.engines.stt.local_agreement import normalize_word
from theo.types import Word


def _keys(words: Sequence[Word]) -> list[str]:
    return [key for key in (normalize_word(w.word) for w in words) if key]


@dataclass(frozen=True, slots=True)
class PauseAnchor:
    """The words of a segment up to a pause (``pause_s`` on the segment's clock)."""

    pause_s: float
    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        """The words as one string (a decoder prefix)."""
        return "".join(w.word for w in self.words).strip()

    def restore(self, words: Sequence[Word]) -> list[Word]:
        """``words`` (a later decode of the same segment, on its clock), with the anchor's
        words in front when that decode lost all of them."""
        mine = _keys(self.words)
        if not mine or any((w.start + w.end) / 2 < self.pause_s for w in words):
            return list(words)
        if _keys(words)[: len(mine)] == mine:  # there, timed after the pause
            return list(words)
        return [*self.words, *words]
