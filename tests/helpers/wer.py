"""The one word error rate of the tests and the benchmarks: jiwer on normalized text.

``normalize`` lowercases, maps "mr."/"mister" to "mister", turns hyphens and dashes into
spaces, drops punctuation (apostrophes inside words are kept: "don't", "d'água") and
collapses whitespace. Letters with accents are kept, so Portuguese text works too.
"""

from __future__ import annotations

import re

import jiwer

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_DASHES = re.compile(r"[-\u2010\u2011\u2012\u2013\u2014\u2015\u2212]")
_MISTER = re.compile(r"\b(?:mr|mister)\b\.?")
_NOT_WORD = re.compile(r"[^\w\s']|_")
_STRAY_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")
_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Return ``text`` lowercased, without punctuation, with single spaces."""
    text = text.lower().translate(_APOSTROPHES)
    text = _DASHES.sub(" ", text)
    text = _MISTER.sub("mister ", text)
    text = _NOT_WORD.sub(" ", text)
    text = _STRAY_APOSTROPHE.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def wer(reference: str, hypothesis: str, *, allow_empty: bool = False) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` after ``normalize``.

    Args:
        reference: The expected text.
        hypothesis: The text to score.
        allow_empty: Score a reference without words 0.0 against a hypothesis without words
            and 1.0 against any other, for comparing two transcripts (a benchmark's batch
            and streaming results) where either may be silence.

    Raises:
        ValueError: The reference has no words (WER is undefined there) and ``allow_empty``
            is false: a test whose reference is empty would pass on anything.
    """
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        if allow_empty:
            return 0.0 if not hyp else 1.0
        raise ValueError("reference has no words after normalization")
    return float(jiwer.wer(ref, hyp))
