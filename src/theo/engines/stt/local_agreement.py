"""LocalAgreement-2: stable partial transcripts from successive decodes of a growing segment.

The policy of whisper_streaming (Macháček, Dabre and Bojar, 2023): a word is committed
once two consecutive hypotheses agree on it and on everything before it. Committed words
are never taken back, so partial transcripts built from them only ever grow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rapidfuzz import fuzz

from theo.types import Word

_NOT_WORD = re.compile(r"[^\w']+")
# A re-decode may rewrite already committed words: it is then aligned by time, and these
# bound how far the alignment looks for a repeated committed tail.
_TIME_TOLERANCE_S = 0.1
_MAX_REPEAT = 5
# A decode forced to start with committed words that already cover the audio may read the
# audio once more after them ("he was not ... man? he was not ... man?"). A run this
# similar to the committed tail (rapidfuzz ratio of the words without spaces), this long,
# is such a re-reading and not speech.
_REREAD_SIMILARITY = 85.0
_REREAD_MIN_WORDS = 3
_REREAD_MIN_CHARS = 10


def normalize_word(word: str) -> str:
    """Lowercase ``word`` and drop punctuation (apostrophes inside words are kept)."""
    return _NOT_WORD.sub("", word.lower()).strip("'")


def _keys(words: Sequence[Word]) -> list[str]:
    return [normalize_word(w.word) for w in words]


def _common_prefix_length(a: Sequence[Word], b: Sequence[Word]) -> int:
    length = 0
    for x, y in zip(_keys(a), _keys(b), strict=False):
        if x != y:
            break
        length += 1
    return length


class LocalAgreement:
    """Commits the words on which the last two hypotheses of one segment agree.

    Hypotheses are transcripts of the segment's audio from its start, or from the
    point given to :meth:`trim` once older audio has been dropped, with word times on
    the segment's clock.
    """

    def __init__(self) -> None:
        self._committed: list[Word] = []
        self._trimmed = 0
        self._pending: list[Word] = []

    @property
    def committed(self) -> tuple[Word, ...]:
        """Every word committed so far in this segment, in order."""
        return tuple(self._committed)

    @property
    def trimmed(self) -> tuple[Word, ...]:
        """The committed words whose audio was dropped (see :meth:`trim`)."""
        return tuple(self._committed[: self._trimmed])

    @property
    def live(self) -> tuple[Word, ...]:
        """The committed words that new hypotheses are expected to start with."""
        return tuple(self._committed[self._trimmed :])

    @property
    def pending(self) -> tuple[Word, ...]:
        """The latest hypothesis's words after the committed ones: not agreed yet."""
        return tuple(self._pending)

    def update(self, words: Sequence[Word]) -> list[Word]:
        """Feed the latest hypothesis; return the words it newly commits (maybe none).

        A word is compared by its normalized form (case and punctuation do not count);
        the committed copy takes the latest hypothesis's spelling and times.
        """
        fresh = self.beyond_committed(words)
        agreed = _common_prefix_length(self._pending, fresh)
        new = fresh[:agreed]
        self._committed.extend(new)
        self._pending = fresh[agreed:]
        return new

    def beyond_committed(self, words: Sequence[Word]) -> list[Word]:
        """The part of a hypothesis that follows the committed words.

        When the hypothesis repeats the committed words (the usual case) they are cut
        off by position. Otherwise the decoder rewrote them, and the hypothesis is
        aligned by time instead: words starting before the last committed word ended
        are dropped, and so is a repetition of the committed tail.
        """
        live = self._committed[self._trimmed :]
        if live and _keys(words[: len(live)]) == _keys(live):
            return self._without_rereading(list(words[len(live) :]))
        if not self._committed:
            return list(words)
        last_end = self._committed[-1].end
        rest = [w for w in words if w.start >= last_end - _TIME_TOLERANCE_S]
        for size in range(min(_MAX_REPEAT, len(self._committed), len(rest)), 0, -1):
            if _keys(rest[:size]) == _keys(self._committed[-size:]):
                return rest[size:]
        return rest

    def _without_rereading(self, fresh: list[Word]) -> list[Word]:
        """``fresh`` without a leading run that re-reads the committed tail.

        The run most similar to a committed tail of about its length wins, so words
        spoken after a re-reading are kept.
        """
        committed = _keys(self._committed)
        best_size, best_score = 0, _REREAD_SIMILARITY
        for size in range(_REREAD_MIN_WORDS, len(fresh) + 1):
            run = "".join(_keys(fresh[:size]))
            if len(run) < _REREAD_MIN_CHARS:
                continue
            for tail_size in range(max(1, size - 2), min(size + 2, len(committed)) + 1):
                score = fuzz.ratio(run, "".join(committed[-tail_size:]))
                if score >= best_score:
                    best_size, best_score = size, score
        return fresh[best_size:]

    def trim(self, until_s: float) -> None:
        """Note that audio before ``until_s`` was dropped: hypotheses no longer cover it.

        Committed words ending by then stay committed but are no longer expected at the
        start of new hypotheses.
        """
        while (
            self._trimmed < len(self._committed) and self._committed[self._trimmed].end <= until_s
        ):
            self._trimmed += 1

    def cut_point(self, horizon_s: float) -> float | None:
        """Where audio may be dropped: after the last live committed word ending by ``horizon_s``.

        The cut falls in the gap before the next committed word, not inside it; ``None``
        when no live committed word ends that early.
        """
        live = self.live
        ending = [i for i, w in enumerate(live) if w.end <= horizon_s]
        if not ending:
            return None
        word = live[ending[-1]]
        following = live[ending[-1] + 1] if ending[-1] + 1 < len(live) else None
        if following is not None and following.start > word.end:
            return (word.end + following.start) / 2
        return word.end

    def reset(self) -> None:
        """Forget everything: the next hypothesis belongs to a new segment."""
        self._committed.clear()
        self._pending.clear()
        self._trimmed = 0
