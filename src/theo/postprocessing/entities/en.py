"""English entity formatting: dollar amounts, percentages, phone and card numbers.

Runs after ITN, so it reads digits ("1234 dollars", NeMo's "$1234.50") and the small
numbers that ITN keeps spelled out ("five dollars"). Whole amounts are written without
cents ("$1,234"), as US style guides do; amounts with cents keep two digits ("$1,234.50").
Phone and card numbers are formatted in :mod:`theo.postprocessing.entities.en_documents`.
"""

from __future__ import annotations

import re
from decimal import Decimal

from theo.postprocessing.entities.amounts import (
    format_amount,
    format_plain,
    parse_number,
    whole_amount,
    word_alternation,
)
from theo.postprocessing.entities.en_documents import format_documents_en
from theo.postprocessing.itn.builtin_en import UNITS

_DIGIT_WORDS = {**UNITS, "ten": 10}
_WORD = rf"(?:{word_alternation(_DIGIT_WORDS)})\b"
_NUMBER = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?(?!\d)|\d+(?:\.\d{1,2})?(?![\d,]\d))"
_AMOUNT = rf"(?:{_NUMBER}|{_WORD})"
_SP = r"[^\S\n]+"
_SCALE = r"(?:hundred|thousand|million|billion|trillion)"
# The cents, also after a pause the engine wrote as punctuation ("twelve hundred dollars.
# And fifty cents": the caller paused before the cents), but then only with the word cents.
_CENTS = (
    rf"(?:{_SP}and{_SP}(?P<cents>\d{{1,2}}(?!\d)|{_WORD}){_SP}cents?\b"
    rf"|(?P<paused>[^\S\n]*[.,;][^\S\n]*and{_SP}(?P<paused_cents>\d{{1,2}}(?!\d)|{_WORD})"
    rf"{_SP}cents?\b))"
)

_MONEY_SYMBOL = re.compile(
    rf"(?<![\w$])(?:US)?\$[^\S\n]?(?P<amount>{_NUMBER})(?:{_SP}(?P<scale>{_SCALE})\b)?"
    rf"(?:{_SP}dollars?\b)?{_CENTS}?",
    re.IGNORECASE,
)
_MONEY_WORD = re.compile(
    rf"(?<![\w$.,])(?P<amount>{_AMOUNT})(?:{_SP}(?P<scale>{_SCALE})\b)?"
    rf"{_SP}(?:US{_SP})?dollars?\b{_CENTS}?",
    re.IGNORECASE,
)
# An amount, a pause written as punctuation, then its cents on their own ("$1,200. And
# $0.50", as an ITN engine that formats "fifty cents" itself leaves them): one amount.
_PAUSED_CENTS = re.compile(
    rf"(?<![\w$])\$(?P<whole>\d{{1,3}}(?:,\d{{3}})*)(?![\d.,]\d)[^\S\n]*[.,;][^\S\n]*and{_SP}"
    rf"\$0\.(?P<cents>\d\d)(?![\d,]|\.\d)",
    re.IGNORECASE,
)
_CENTS_ONLY = re.compile(rf"(?<![\w$.,])(?P<cents>\d{{1,2}}(?!\d)|{_WORD}){_SP}cents?\b", re.I)
# "1234 reais and 50 cents": cents after another currency are that currency's.
_OTHER_CURRENCY_AND = re.compile(
    rf"\b(?:reais|real|euros?|pesos?|pounds?|yen|yuan|rupees?|francs?|centavos?)"
    rf"[^\S\n]*,?{_SP}and{_SP}$",
    re.IGNORECASE,
)
_PERCENT = re.compile(
    rf"(?<![\w.,])(?P<num>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?(?!\d)|\d+(?:\.\d+)?(?!\d)|{_WORD})"
    rf"[^\S\n]*(?:%|percent\b|per{_SP}cent\b)",
    re.IGNORECASE,
)


def _value(text: str) -> Decimal | None:
    return parse_number(text, _DIGIT_WORDS)


def _amount(match: re.Match[str], cents_text: str | None) -> str | None:
    amount = _value(match.group("amount"))
    scale = (match.group("scale") or "").lower()
    if amount is None:
        return None
    if scale == "hundred":
        # "12 hundred dollars", as an engine writes "twelve hundred": 1200.
        if amount != amount.to_integral() or amount >= 100:
            return None
        amount, scale = amount * 100, ""
    if scale and scale != "thousand":
        if cents_text:
            return None
        return f"${format_plain(amount, '.')} {match.group('scale')}"
    value = whole_amount(amount, scale, cents_text, thousand_word="thousand", parse=_value)
    if value is None:
        return None
    return f"${format_amount(value, thousands=',', decimal='.', always_cents=False)}"


def _money(match: re.Match[str]) -> str:
    if not match.group("paused"):
        return _amount(match, match.group("cents")) or match.group()
    joined = _amount(match, match.group("paused_cents"))
    if joined is not None:
        return joined
    # Cents that cannot join the amount ("$2 million. And fifty cents") stay a sentence
    # of their own; the amount is formatted as if they had not been heard.
    head, tail = match.string[match.start() : match.start("paused")], match.group("paused")
    return (_amount(match, None) or head) + tail


def _paused_cents(match: re.Match[str]) -> str:
    return f"${match.group('whole')}.{match.group('cents')}"


def _cents_only(match: re.Match[str]) -> str:
    if _OTHER_CURRENCY_AND.search(match.string, 0, match.start()):
        return match.group()
    cents = _value(match.group("cents"))
    if cents is None:
        return match.group()
    return f"${format_amount(cents / 100, thousands=',', decimal='.', always_cents=True)}"


def _percent(match: re.Match[str]) -> str:
    number = match.group("num")
    if number.lower() in _DIGIT_WORDS:
        number = str(_DIGIT_WORDS[number.lower()])
    return f"{number}%"


def format_entities_en(text: str, *, money: bool = True) -> str:
    """Format English entities in ``text``.

    Args:
        text: English text after ITN.
        money: format money; off for translations, whose currency words are the
            translator's ("centavos" -> "cents"), not the speaker's.

    Returns:
        The text with money as ``$1,234.50`` (``$2 million`` for round millions and
        above), percentages as ``20%``, and phone and card numbers after a keyword as
        ``555-123-4567`` and ``4111 1111 1111 1111``.
    """
    text = format_documents_en(text)
    if money:
        text = _MONEY_SYMBOL.sub(_money, text)
        text = _MONEY_WORD.sub(_money, text)
        text = _CENTS_ONLY.sub(_cents_only, text)
        text = _PAUSED_CENTS.sub(_paused_cents, text)
    return _PERCENT.sub(_percent, text)
