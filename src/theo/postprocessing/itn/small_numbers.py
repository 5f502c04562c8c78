"""Small numbers the engine wrote as digits, spelled out: one written form for 0-9.

ITN keeps small counts as words ("seven of clubs"), but Whisper itself sometimes writes
them as digits, and which form it picks depends on how the audio was decoded: the batch
path and a realtime segment of the same recording can give "Seven of clubs" and
"7 of clubs". Rewriting a lone small digit as its word after ITN gives both paths, and
both ITN engines, one written form for the same speech.

Only languages whose lexicon lists the words do this: English does; Portuguese does not,
because "1" and "2" are "um"/"uma" and "dois"/"duas" depending on the noun's gender.
"""

from __future__ import annotations

import re

from theo.postprocessing.itn.builtin_en import ENGLISH
from theo.postprocessing.itn.builtin_pt import PORTUGUESE
from theo.postprocessing.itn.cardinal import Lexicon

_LEXICONS: dict[str, Lexicon] = {"en": ENGLISH, "pt": PORTUGUESE}

# A whole number token: no digit, letter, sign, currency, or number punctuation glued to
# it on either side ("5.5", "5,000", "5:30", "5/8", "-5", "$5", "5th", "5%", "5-year").
_TOKEN = re.compile(
    r"(?<![\w$€£¥.,:/#+\-'\u2019])(?P<num>\d+)(?![\w%°$€£¥/\-]|[.,:]\d|['\u2019]\w|[^\S\n]*%)"
)
# Digits joined like this form one run ("5 5", "5, 5"): a long run is dictated digits.
_RUN_GAP = re.compile(r",?[^\S\n]+")
_CURRENCY_BEFORE = re.compile(r"[$€£¥][^\S\n]*$")
_SENTENCE_START = re.compile(r"(?:^|[.!?][^\S\n]+|\n)[\"'\u201c\u2018(\[]*$")
# Words after which a digit is a measurement, a time or a large amount, written in digits
# by every style guide (and by NeMo: "2 million", "5 kg", "5 pm").
_KEEP_BEFORE = frozenset(
    {
        "thousand",
        "million",
        "billion",
        "trillion",
        "am",
        "pm",
        "a.m.",
        "p.m.",
        "kg",
        "g",
        "mg",
        "km",
        "cm",
        "mm",
        "mi",
        "ft",
        "lb",
        "lbs",
        "oz",
        "mph",
        "kph",
        "km/h",
        "h",
        "hr",
        "hrs",
        "min",
        "sec",
        "ms",
        "kb",
        "mb",
        "gb",
        "tb",
        "hz",
        "khz",
        "mhz",
        "ghz",
        "ml",
        "kw",
        "v",
        "°c",
        "°f",
    }
)
_NEXT_WORD = re.compile(r"[^\S\n]+(?P<word>[^\s,;!?]+)")
_PREVIOUS_WORD = re.compile(r"(?P<word>\S+)[^\S\n]+$")
_KEEP_AFTER = frozenset({"no.", "nº", "n.º"})


def spell_small_numbers(text: str, language: str) -> str:
    """Rewrite lone digits below the language's ``spelled_below`` as words.

    Runs of at least ``min_digit_run`` single digits ("1 2 3", "1, 2, 3") are dictated
    digits (a phone, a code) and stay. A digit glued to a sign, a decimal, a time, an
    ordinal suffix or a currency stays, and so does one followed by a scale or unit word.
    A word that starts a sentence is capitalised.

    Args:
        text: text after ITN.
        language: base ISO 639-1 code (``"en"``).

    Returns:
        ``text`` with its lone small digits written as words; unchanged for languages
        without spelled forms.
    """
    lexicon = _LEXICONS.get(language)
    if lexicon is None or not lexicon.spelled_forms:
        return text
    tokens = list(_TOKEN.finditer(text))
    spell: list[re.Match[str]] = []
    index = 0
    while index < len(tokens):
        end = index + 1
        while (
            end < len(tokens)
            and _is_digit(tokens[end - 1])
            and _is_digit(tokens[end])
            and _RUN_GAP.fullmatch(text, tokens[end - 1].end(), tokens[end].start())
        ):
            end += 1
        run = tokens[index:end]
        if len(run) == 1 or (len(run) < lexicon.min_digit_run and all(map(_is_digit, run))):
            spell.extend(m for m in run if _spellable(text, m, lexicon))
        index = end
    out: list[str] = []
    cursor = 0
    for match in spell:
        word = lexicon.spelled_forms[int(match.group("num"))]
        if _SENTENCE_START.search(text, 0, match.start()):
            word = word[:1].upper() + word[1:]
        out.append(text[cursor : match.start()])
        out.append(word)
        cursor = match.end()
    out.append(text[cursor:])
    return "".join(out)


def _is_digit(match: re.Match[str]) -> bool:
    return len(match.group("num")) == 1


def _spellable(text: str, match: re.Match[str], lexicon: Lexicon) -> bool:
    number = match.group("num")
    if number != str(int(number)) or int(number) >= len(lexicon.spelled_forms):
        return False  # "05" is a code, not a count
    if _CURRENCY_BEFORE.search(text, 0, match.start()):
        return False
    previous = _PREVIOUS_WORD.search(text, 0, match.start())
    if previous is not None and previous.group("word").lower() in _KEEP_AFTER:
        return False
    following = _NEXT_WORD.match(text, match.end())
    if following is None:
        return True
    word = following.group("word").lower()
    return word not in _KEEP_BEFORE and word.rstrip(".") not in _KEEP_BEFORE
