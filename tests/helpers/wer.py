"""Word error rate for tests: compare transcripts on normalized text.

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


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` after ``normalize``.

    Raises ``ValueError`` when the reference has no words (WER is undefined there).
    """
    ref = normalize(reference)
    if not ref:
        raise ValueError("reference has no words after normalization")
    return float(jiwer.wer(ref, normalize(hypothesis)))
