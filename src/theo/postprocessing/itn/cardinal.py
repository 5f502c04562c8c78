"""Language-neutral parser that turns spelled-out numbers into digits.

Each language supplies a :class:`Lexicon`; the parser walks the words of a text and
replaces every maximal number phrase ("dois mil e quinhentos", "twenty five") with
digits, following the conventions described on :class:`Lexicon`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_WORD = re.compile(r"[^\W\d_]+")
# Number words join across spaces or a hyphen ("twenty-five"), never across punctuation.
_JOINER = re.compile(r"[^\S\n]+|-")
_SPACES = re.compile(r"[^\S\n]+")
_AFTER_DIGITS = re.compile(r"\d[^\S\n]*$")


@dataclass(frozen=True, slots=True)
class Lexicon:
    """The number words of one language and how they combine.

    Attributes:
        units: words for 0-9 (feminine forms included).
        teens: words for 10-19.
        tens: words for 20-90.
        hundreds: single words for whole hundreds (Portuguese "duzentos").
        hundred: multiplier words (English "hundred").
        bound_hundreds: hundreds words that never end a number ("cento" needs "e ...";
            alone it is the "cento" of "por cento").
        hundreds_connector: whether tens after hundreds need a connector ("cento e um");
            without one, "oitocentos sete" is two numbers, as in dictated digits.
        scales: thousand, million, billion words and their values.
        bare_scales: scales that stand alone without a count ("mil" = 1000).
        connectors: words that may join parts of one number ("e", "and").
        tens_connector: word required between tens and units ("vinte e cinco"); ``None``
            when units follow the tens directly ("twenty five").
        spelled_below: single-word numbers below this value stay as words (style guides
            spell out small counts; "um"/"one" are also articles and pronouns).
        named_scales: a number that is an exact count of one of these keeps the scale word
            ("2 milhões", "2 million").
        decimal_words: words that introduce decimal digits ("vírgula", "point").
        decimal_separator: the separator written for them.
        run_only_units: digit words recognised only inside spoken digit runs (Portuguese
            "meia" = 6 in phone numbers, otherwise "half" or "sock").
        year_zero: words read as a zero inside a spoken year ("nineteen oh five").
        spoken_years: whether "nineteen ninety" style pairs form a year.
        min_digit_run: consecutive single digits that form a digit string (phone, CPF).
        spelled_forms: the words for ``0 .. spelled_below - 1``, by value, used to spell
            out small numbers an engine wrote as digits (see ``itn.small_numbers``);
            empty where the word depends on context (Portuguese gender: "um"/"uma").
    """

    units: Mapping[str, int]
    teens: Mapping[str, int]
    tens: Mapping[str, int]
    scales: Mapping[str, int]
    connectors: frozenset[str]
    decimal_words: frozenset[str]
    decimal_separator: str
    spelled_below: int
    hundreds: Mapping[str, int] = field(default_factory=dict)
    hundred: frozenset[str] = frozenset()
    bound_hundreds: frozenset[str] = frozenset()
    hundreds_connector: bool = False
    bare_scales: frozenset[str] = frozenset()
    tens_connector: str | None = None
    named_scales: frozenset[int] = frozenset({10**6, 10**9, 10**12})
    run_only_units: Mapping[str, int] = field(default_factory=dict)
    year_zero: frozenset[str] = frozenset()
    spoken_years: bool = False
    min_digit_run: int = 3
    spelled_forms: tuple[str, ...] = ()

    def words(self) -> frozenset[str]:
        """Every word this lexicon can read as (part of) a number."""
        return frozenset(
            [
                *self.units,
                *self.teens,
                *self.tens,
                *self.hundreds,
                *self.hundred,
                *self.scales,
                *self.run_only_units,
            ]
        )


@dataclass(slots=True)
class _Number:
    first: int
    end: int
    value: int
    words: int
    simple_tens: bool = False
    """Below 100 and said as one tens phrase: the halves of a spoken year."""
    run_only: bool = False
    text: str | None = None


class _Parser:
    def __init__(self, text: str, lexicon: Lexicon) -> None:
        self.text = text
        self.lex = lexicon
        self.spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        self.lower = [text[s:e].lower() for s, e in self.spans]

    def word(self, i: int) -> str:
        return self.lower[i] if i < len(self.lower) else ""

    def joined(self, i: int, spaces_only: bool = False) -> bool:
        """Whether token ``i`` and token ``i + 1`` are separated only by a joiner."""
        if i + 1 >= len(self.spans):
            return False
        gap = self.text[self.spans[i][1] : self.spans[i + 1][0]]
        return (_SPACES if spaces_only else _JOINER).fullmatch(gap) is not None

    def follows(self, i: int, words: Mapping[str, int] | frozenset[str]) -> bool:
        return self.joined(i) and self.word(i + 1) in words

    def tens_part(self, i: int) -> tuple[int, int] | None:
        lex, w = self.lex, self.word(i)
        if w in lex.tens:
            value, j = lex.tens[w], i + 1
            if lex.tens_connector is None:
                if self.follows(i, lex.units) and lex.units[self.word(i + 1)]:
                    return value + lex.units[self.word(i + 1)], i + 2
            elif self.word(i + 1) == lex.tens_connector and self.joined(i):
                unit = self.word(i + 2)
                if self.joined(i + 1) and lex.units.get(unit, 0):
                    return value + lex.units[unit], i + 3
            return value, j
        if w in lex.teens:
            return lex.teens[w], i + 1
        if w in lex.units:
            return lex.units[w], i + 1
        return None

    def after_hundreds(self, value: int, j: int) -> tuple[int, int]:
        if self.word(j) in self.lex.connectors and self.joined(j - 1) and self.joined(j):
            rest = self.tens_part(j + 1)
            if rest is not None:
                return value + rest[0], rest[1]
        if self.joined(j - 1) and not self.lex.hundreds_connector:
            rest = self.tens_part(j)
            if rest is not None:
                return value + rest[0], rest[1]
        return value, j

    def group(self, i: int) -> tuple[int, int, bool] | None:
        """A value below 1000 at ``i``: (value, next index, said as a plain tens phrase)."""
        lex, w = self.lex, self.word(i)
        if w in lex.hundreds:
            value, j = self.after_hundreds(lex.hundreds[w], i + 1)
            if j == i + 1 and w in lex.bound_hundreds:
                return None
            return value, j, False
        part = self.tens_part(i)
        if part is None:
            return None
        value, j = part
        if 0 < value < 100 and self.word(j) in lex.hundred and self.joined(j - 1):
            value, j = self.after_hundreds(value * 100, j + 1)
            return value, j, False
        return value, j, True

    def number(self, i: int) -> _Number | None:
        lex = self.lex
        if self.word(i) in lex.run_only_units:
            return _Number(i, i + 1, lex.run_only_units[self.word(i)], 1, run_only=True)
        total, j, last_scale, simple = 0, i, 0, False
        parts: list[tuple[int, int]] = []
        while True:
            g = self.group(j)
            k = g[1] if g else j
            scale_word = self.word(k)
            scale = lex.scales.get(scale_word, 0)
            scale_ok = scale and (not last_scale or scale < last_scale)
            if scale_ok and (g is None or self.joined(k - 1)):
                if g is None and (
                    scale_word not in lex.bare_scales or parts or self.after_digits(k)
                ):
                    break
                count = g[0] if g else 1
                total += count * scale
                parts.append((scale, count))
                last_scale, j = scale, k + 1
                if self.word(j) in lex.connectors and self.joined(j - 1) and self.joined(j):
                    if self.group(j + 1) is not None:
                        j += 1
                elif not self.joined(j - 1) or self.group(j) is None:
                    break
                continue
            if g is not None and (not parts or self.joined(j - 1)):
                total += g[0]
                simple = not parts and g[2]
                j = g[1]
            break
        if j == i:
            return None
        if len(parts) == 1 and self.word(j - 1) in lex.scales and parts[0][0] in lex.named_scales:
            return _Number(i, j, total, j - i, text=f"{parts[0][1]} {self.text_of(j - 1)}")
        return _Number(i, j, total, j - i, simple_tens=simple)

    def after_digits(self, i: int) -> bool:
        """Whether token ``i`` follows a number written in digits ("2 mil")."""
        return _AFTER_DIGITS.search(self.text, 0, self.spans[i][0]) is not None

    def text_of(self, i: int) -> str:
        start, end = self.spans[i]
        return self.text[start:end]

    def decimal(self, num: _Number) -> None:
        """Extend ``num`` with "vírgula cinco" / "point five" digits when they follow it."""
        lex, j = self.lex, num.end
        if num.text is not None or not (
            self.word(j) in lex.decimal_words and self.joined(j - 1) and self.joined(j)
        ):
            return
        digits, k = "", j + 1
        while self.word(k) in lex.units and (k == j + 1 or self.joined(k - 1)):
            digits += str(lex.units[self.word(k)])
            k += 1
        if not digits:
            part = self.tens_part(j + 1)
            if part is not None and part[0] >= 10:
                digits, k = str(part[0]), part[1]
        if not digits:
            return
        text = f"{num.value}{lex.decimal_separator}{digits}"
        if self.follows(k - 1, lex.scales) and lex.scales[self.word(k)] in lex.named_scales:
            text, k = f"{text} {self.text_of(k)}", k + 1
        num.text, num.end, num.words = text, k, k - num.first


def _digit_runs(parser: _Parser, numbers: list[_Number]) -> list[_Number]:
    """Merge runs of single digit words ("um dois três") into one digit string."""
    lex, merged, i = parser.lex, [], 0
    while i < len(numbers):
        j = i
        while (
            j < len(numbers)
            and numbers[j].words == 1
            and numbers[j].value <= 9
            and numbers[j].text is None
            and (
                j == i
                or (
                    numbers[j].first == numbers[j - 1].end
                    and parser.joined(numbers[j - 1].end - 1, spaces_only=True)
                )
            )
        ):
            j += 1
        if j - i >= lex.min_digit_run:
            digits = "".join(str(n.value) for n in numbers[i:j])
            merged.append(_Number(numbers[i].first, numbers[j - 1].end, 0, j - i, text=digits))
            i = j
        else:
            merged.append(numbers[i])
            i += 1
    return merged


def _spoken_years(parser: _Parser, numbers: list[_Number]) -> list[_Number]:
    """Join "nineteen ninety" / "twenty oh five" into one four-digit year."""
    merged: list[_Number] = []
    for num in numbers:
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and prev.simple_tens
            and 11 <= prev.value <= 20
            and num.simple_tens
            and prev.text is None
            and num.text is None
        ):
            gap_ok = num.first == prev.end and parser.joined(prev.end - 1)
            zero = parser.word(prev.end) in parser.lex.year_zero and num.first == prev.end + 1
            if gap_ok and num.value >= 10:
                merged[-1] = _Number(prev.first, num.end, 0, 2, text=f"{prev.value}{num.value}")
                continue
            if zero and num.value < 10 and parser.joined(prev.end) and parser.joined(prev.end - 1):
                year = f"{prev.value}0{num.value}"
                merged[-1] = _Number(prev.first, num.end, 0, 3, text=year)
                continue
        merged.append(num)
    return merged


def normalize_numbers(text: str, lexicon: Lexicon) -> str:
    """Replace spelled-out numbers in ``text`` with digits.

    Args:
        text: any text; words that are not numbers are left exactly as they are.
        lexicon: the language's number words.

    Returns:
        The text with number phrases replaced.
    """
    parser = _Parser(text, lexicon)
    numbers: list[_Number] = []
    i = 0
    while i < len(parser.spans):
        num = parser.number(i)
        if num is None:
            i += 1
            continue
        parser.decimal(num)
        numbers.append(num)
        i = num.end
    numbers = _digit_runs(parser, numbers)
    if lexicon.spoken_years:
        numbers = _spoken_years(parser, numbers)
    out, cursor = [], 0
    for num in numbers:
        if num.text is None and (
            num.run_only or (num.words == 1 and num.value < lexicon.spelled_below)
        ):
            continue
        start, end = parser.spans[num.first][0], parser.spans[num.end - 1][1]
        out.append(text[cursor:start])
        out.append(num.text if num.text is not None else str(num.value))
        cursor = end
    out.append(text[cursor:])
    return "".join(out)
