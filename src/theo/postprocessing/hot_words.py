"""Hot-word correction: respell near matches of domain words ("PIX", "Banco Itaú").

A window of transcript words is replaced by a hot word when, compared case-insensitively
with accents folded, it is

* the same word ("itau" -> "Itaú", "pix" -> "PIX"), or the same letters split or joined
  differently ("whats app" -> "WhatsApp");
* the same after a small Portuguese/English spelling-to-sound normalization
  ("pics", "picks", "piques" -> "PIX");
* similar enough by rapidfuzz's ratio (``threshold``, 0-100), for hot words of at least
  five letters: on shorter words one edit is already a different word.

The last two never rewrite a word that is common in the transcript's language (wordfreq
Zipf frequency at or above ``common_zipf``): "fix", "largo" or "pia" are real words that
merely resemble a hot word.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from rapidfuzz import fuzz
from wordfreq import available_languages, zipf_frequency

from theo.postprocessing.stage import base_language

_TOKEN = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")
_SPACES = re.compile(r"[^\S\n]+")
_HAS_DIGIT = re.compile(r"\d")
_SOUNDS = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"[^a-z0-9 ]", ""),
        (r"ph", "f"),
        (r"ck", "k"),
        (r"qu(?=[eiy])", "k"),
        (r"c(?=[eiy])", "s"),
        (r"[cq]", "k"),
        (r"x", "ks"),
        (r"y", "i"),
        (r"ee|ea", "i"),
        (r"(?<![csln])h", ""),
        (r"(?<=[^aeiou ])es\b", "s"),
        (r"(?<=[^aeiou ])e\b", ""),
        (r"z\b", "s"),
        (r"(.)\1+", r"\1"),
    )
)
_WORDFREQ_LANGUAGES = frozenset(available_languages())
_FALLBACK_LANGUAGES = ("pt", "en")
MIN_FUZZY_LETTERS = 5
"""Hot words shorter than this are matched exactly or phonetically, never fuzzily."""


def fold(text: str) -> str:
    """Lower-case ``text`` and strip accents: ``"Itaú"`` -> ``"itau"``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def phonetic_key(folded: str) -> str:
    """Spell folded text roughly as it sounds: ``"piques"``, ``"picks"`` -> ``"piks"``."""
    for pattern, replacement in _SOUNDS:
        folded = pattern.sub(replacement, folded)
    return folded


@dataclass(frozen=True, slots=True)
class _HotWord:
    text: str
    words: tuple[str, ...]
    folded: str
    compact: str
    sound: str


@dataclass(frozen=True, slots=True)
class _Candidate:
    first: int
    end: int
    score: float
    hot: _HotWord


class HotWordCorrector:
    """Text stage that respells near matches of the configured hot words.

    Args:
        hot_words: the words as they must be written; multi-word entries are matched
            against the same number of transcript words.
        threshold: rapidfuzz ratio (0-100) at or above which a window is a near match.
        common_zipf: words at least this frequent (wordfreq Zipf scale) in the
            transcript's language are only replaced on an exact match.
    """

    name = "hot_words"

    def __init__(
        self, hot_words: Iterable[str], threshold: float = 85.0, common_zipf: float = 3.5
    ) -> None:
        self.threshold = threshold
        self.common_zipf = common_zipf
        seen: dict[str, _HotWord] = {}
        for raw in hot_words:
            text = _SPACES.sub(" ", raw.strip())
            words = tuple(fold(w) for w in _TOKEN.findall(text))
            if words and " ".join(words) not in seen:
                folded = " ".join(words)
                sound = phonetic_key(folded)
                seen[folded] = _HotWord(text, words, folded, folded.replace(" ", ""), sound)
        self.hot_words: tuple[_HotWord, ...] = tuple(seen.values())

    def process(self, text: str, language: str | None) -> str:
        """Replace near matches of the hot words in ``text`` with their exact spelling."""
        if not self.hot_words or not text:
            return text
        windows = _Windows.of(text)
        tokens = windows.tokens
        languages = self._languages(language)
        candidates = [
            candidate
            for hot in self.hot_words
            for candidate in self._candidates(windows, hot, languages)
        ]
        candidates.sort(key=lambda c: (-(c.end - c.first), -c.score, c.first))
        taken: set[int] = set()
        chosen: list[_Candidate] = []
        for cand in candidates:
            span = set(range(cand.first, cand.end))
            if not span & taken:
                taken |= span
                chosen.append(cand)
        out, cursor = [], 0
        for cand in sorted(chosen, key=lambda c: c.first):
            start, end = tokens[cand.first].start(), tokens[cand.end - 1].end()
            out += [text[cursor:start], cand.hot.text]
            cursor = end
        out.append(text[cursor:])
        return "".join(out)

    def _languages(self, language: str | None) -> tuple[str, ...]:
        lang = base_language(language)
        return (lang,) if lang in _WORDFREQ_LANGUAGES else _FALLBACK_LANGUAGES

    def _candidates(
        self, windows: _Windows, hot: _HotWord, languages: tuple[str, ...]
    ) -> Iterable[_Candidate]:
        n = len(hot.words)
        for size in {n, n + 1, max(n - 1, 1)}:
            for first in range(len(windows.tokens) - size + 1):
                end = first + size
                if not windows.contiguous(first, end):
                    continue
                words = windows.folded[first:end]
                score = 0.0
                if size == n:
                    score = self._score(words, windows.sounds[first:end], hot, languages)
                if not score and "".join(words) == hot.compact:
                    score = 100.0
                if score:
                    yield _Candidate(first, end, score, hot)

    def _score(
        self,
        words: Sequence[str],
        sounds: Sequence[str],
        hot: _HotWord,
        languages: tuple[str, ...],
    ) -> float:
        joined = " ".join(words)
        if joined == hot.folded:
            return 100.0
        if any(_HAS_DIGIT.search(w) for w in words):
            return 0.0
        if " ".join(sounds) == hot.sound:
            score = 99.0
        elif len(hot.compact) >= MIN_FUZZY_LETTERS:
            score = fuzz.ratio(joined, hot.folded, score_cutoff=self.threshold)
        else:
            return 0.0
        changed = [w for w, h in zip(words, hot.words, strict=True) if w != h]
        if score and any(self._is_common(w, languages) for w in changed):
            return 0.0
        return float(score)

    def _is_common(self, word: str, languages: tuple[str, ...]) -> bool:
        return max(zipf_frequency(word, lang) for lang in languages) >= self.common_zipf


@dataclass(frozen=True, slots=True)
class _Windows:
    """The transcript's word tokens, folded and as phonetic keys, computed once per text."""

    tokens: Sequence[re.Match[str]]
    folded: Sequence[str]
    sounds: Sequence[str]
    joinable: Sequence[bool]
    """``joinable[i]``: only spaces (no punctuation) separate token ``i`` from ``i + 1``."""

    @classmethod
    def of(cls, text: str) -> _Windows:
        tokens = list(_TOKEN.finditer(text))
        folded = [fold(t.group()) for t in tokens]
        joinable = [
            _SPACES.fullmatch(text[a.end() : b.start()]) is not None for a, b in pairwise(tokens)
        ]
        return cls(tokens, folded, [phonetic_key(w) for w in folded], joinable)

    def contiguous(self, first: int, end: int) -> bool:
        """Whether tokens ``first..end`` are separated by spaces only."""
        return all(self.joinable[first : end - 1])
