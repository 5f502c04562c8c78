"""English phone and card numbers: dictated digit runs after a keyword.

Callers dictate numbers in groups with pauses, which the speech engine writes as commas
or full stops ("five five five, one two three, four five six seven", "555. 123. 4567").
A bare run of digits may be anything (an amount, an order number, a year), so a run is
formatted only when a keyword introduces it: "phone", "cell", "call me at", "my number
is" for phones (``555-123-4567``, ``+1 555-123-4567``, ``123-4567``; an area code written
in parentheses keeps them), "card" for card numbers (``4111 1111 1111 1111``, Amex
``3782 822463 10005``). After the keyword the digits may be written, spoken one by one,
or grouped with spaces, commas, dots or dashes.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from theo.postprocessing.entities.amounts import word_alternation
from theo.postprocessing.entities.cards import format_card
from theo.postprocessing.itn.builtin_en import UNITS

DOCUMENT_DIGITS = {**UNITS, "oh": 0}
"""Digit words read inside a dictated number ("oh" is 0 when dictating)."""

_DIGIT = rf"(?:\d+|(?:{word_alternation(UNITS)})\b)"
# A comma is a pause only with a space after it: glued to digits it separates thousands
# ("1,234,567"), so it ends the run.
_SEPARATOR = r"(?:[^\S\n]*[.;:\-][^\S\n]*|[^\S\n]*,[^\S\n]+|[^\S\n]+)"
# "oh" is a zero only between digits ("five five five, oh one two"): at the end of a run
# it is an interjection ("555 123 4567, oh and ..."), and it never starts one.
_OH = rf"oh\b(?={_SEPARATOR}{_DIGIT})"
_TOKEN = rf"(?:{_DIGIT}|{_OH})"
_SPAN = rf"(?P<span>\+?\(?{_DIGIT}(?:{_SEPARATOR}\(?{_TOKEN}\)?)*)"
# Each filler is preceded by exactly one kind of gap, so a failed match cannot backtrack
# through exponentially many ways of splitting the spaces.
# A full stop is a gap too: a caller who pauses after "my phone number" gets one written
# ("My phone number. It's 555. 123. 4567.").
_GAP = r"(?:[^\S\n]*[:,.][^\S\n]*|[^\S\n]+)"
_PHONE_FILLERS = (
    rf"(?:{_GAP}(?:it['\u2019]s|its|it|is|was|my|our|me|us|him|her|them|at|on|back|"
    rf"number|phone|cell|mobile|home|work|office|direct|directly)\b)*{_GAP}?"
)
_CARD_FILLERS = rf"(?:{_GAP}(?:it['\u2019]s|its|it|is|was|my|the|number)\b)*{_GAP}?"
_DIGIT_TOKEN = re.compile(_TOKEN, re.IGNORECASE)
# The gap after a phone or card number when more digits follow in the next sentence.
_SENTENCE_BREAK = re.compile(r"\)?[^\S\n]*[.;][^\S\n]+")
_PARENTHESISED_AREA = re.compile(r"(?:\+?1[^\S\n]*)?\(")

_PHONE_CONTEXT = re.compile(
    # "number" alone is a phone only when it is someone's: "the number of people is
    # twelve", "order number 5551234" are not.
    r"(?:\b(?:phone|telephone|cellphone|cell|mobile|whatsapp|fax|call)"
    r"|\b(?:reach|contact|text)[^\S\n]+(?:me|us|him|her|them)(?:[^\S\n]+(?:at|on))?"
    r"|\b(?:my|your|his|her|our|their|contact|callback|home|work|office|direct)"
    rf"[^\S\n]+number)\b{_PHONE_FILLERS}{_SPAN}",
    re.IGNORECASE,
)
_CARD_CONTEXT = re.compile(rf"\bcards?\b{_CARD_FILLERS}{_SPAN}", re.IGNORECASE)


def format_us_phone(digits: str, *, parenthesised: bool = False) -> str | None:
    """Write 7, 10 or 11 (``1`` first) digits as a North American phone number.

    Args:
        digits: the digits, nothing else.
        parenthesised: write the area code in parentheses (``(555) 123-4567``), as the
            speaker's engine did.

    Returns:
        ``123-4567``, ``555-123-4567`` or ``+1 555-123-4567``; ``None`` for other digits.
    """
    if len(digits) == 11 and digits[0] == "1":
        local = format_us_phone(digits[1:], parenthesised=parenthesised)
        return f"+1 {local}" if local else None
    if len(digits) == 10:
        area = f"({digits[:3]}) " if parenthesised else f"{digits[:3]}-"
        return f"{area}{digits[3:6]}-{digits[6:]}"
    if len(digits) == 7:
        return f"{digits[:3]}-{digits[3:]}"
    return None


def _render_phone(digits: str, written: str) -> str | None:
    if written.startswith("+") and len(digits) != 11:
        return None  # "+44 ...": another country's code
    return format_us_phone(digits, parenthesised=bool(_PARENTHESISED_AREA.match(written)))


def _render_card(digits: str, written: str) -> str | None:
    return None if written.startswith(("+", "(")) else format_card(digits)


def _read_run(span: str, render: Callable[[str, str], str | None]) -> tuple[str, int] | None:
    """The longest prefix of ``span`` that ``render`` formats, and where it ends.

    A prefix must end the run, or end a sentence ("... 4567. Two more things"): digits
    that go on after it in the same sentence make the run another kind of number.
    """
    tokens = list(_DIGIT_TOKEN.finditer(span))
    digits, best = "", None
    for index, token in enumerate(tokens):
        word = token.group().lower()
        digits += word if word.isdigit() else str(DOCUMENT_DIGITS[word])
        if len(digits) > 16:  # longer than any phone or card number
            break
        last = index + 1 == len(tokens)
        if not last and not _SENTENCE_BREAK.fullmatch(span, token.end(), tokens[index + 1].start()):
            continue
        rendered = render(digits, span[: token.end()])
        if rendered is not None:
            best = (rendered, token.end())
    return best


def _contextual(render: Callable[[str, str], str | None]) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        found = _read_run(match.group("span"), render)
        if found is None:
            return match.group()
        rendered, end = found
        span_start = match.start("span") - match.start()
        whole = match.group()
        return whole[:span_start] + rendered + whole[span_start + end :]

    return replace


def format_documents_en(text: str) -> str:
    """Format phone and card numbers introduced by a keyword in English text.

    Args:
        text: text after ITN (digits, or digit words where ITN kept them).

    Returns:
        The text with phone numbers as ``555-123-4567`` (``+1 555-123-4567``,
        ``123-4567``) and card numbers as ``4111 1111 1111 1111`` or
        ``3782 822463 10005``; digit runs of other lengths, or without a keyword,
        unchanged.
    """
    text = _CARD_CONTEXT.sub(_contextual(_render_card), text)
    return _PHONE_CONTEXT.sub(_contextual(_render_phone), text)
