"""Built-in English inverse text normalization: number words to digits.

A light fallback for when the NeMo grammars are not installed or not built yet. It writes
numbers the way NeMo's English grammars do ("1234", "2 million", "1990", "3.5"), so the
entity formatter that runs next sees the same shapes from either engine.
"""

from __future__ import annotations

from theo.postprocessing.itn.cardinal import Lexicon, normalize_numbers

UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
"""Digit words."""

_TEENS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {
    "thousand": 10**3,
    "million": 10**6,
    "billion": 10**9,
    "trillion": 10**12,
}

ENGLISH = Lexicon(
    units=UNITS,
    teens=_TEENS,
    tens=_TENS,
    hundred=frozenset({"hundred"}),
    scales=_SCALES,
    connectors=frozenset({"and"}),
    # Like NeMo's en grammars: zero to ten stay words ("one of them", "ten people").
    spelled_below=11,
    decimal_words=frozenset({"point"}),
    decimal_separator=".",
    year_zero=frozenset({"oh", "o"}),
    spoken_years=True,
    spelled_forms=(*UNITS, "ten"),
)


def normalize_en(text: str) -> str:
    """Rewrite English number words in ``text`` as digits.

    Args:
        text: English text, as an ASR engine writes it.

    Returns:
        The text with number phrases above ten, decimals, spoken years and spoken digit
        runs written in digits; other words unchanged.
    """
    return normalize_numbers(text, ENGLISH)
