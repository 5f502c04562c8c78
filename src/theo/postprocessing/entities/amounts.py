"""Number parsing and money formatting shared by the entity formatters."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation

_PT_GROUPED = re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?")
_EN_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_COMMA_DECIMAL = re.compile(r"\d+,\d+")
_DOT_DECIMAL = re.compile(r"\d+\.\d+")

CENT = Decimal("0.01")
MAX_DIGITS = 15
"""Longer digit strings are identifiers or noise, never amounts (and exceed Decimal's precision)."""


def word_alternation(words: Iterable[str]) -> str:
    """A regex alternation of ``words``, longest first so prefixes never win."""
    return "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True))


def parse_number(text: str, words: Mapping[str, int]) -> Decimal | None:
    """Read "2.500,50", "2,500.50", "2500,5", "3.5", "12" or a digit word as a value.

    Three digits after the only separator mean thousands ("2.500", "12,500"), because
    amounts and percentages are never written with three decimals.

    Args:
        text: the number as written.
        words: digit words and their values ("dois" -> 2).

    Returns:
        The value, or ``None`` when ``text`` is not a number or is too long to be one.
    """
    lowered = text.lower()
    if sum(c.isdigit() for c in text) > MAX_DIGITS:
        return None
    if lowered in words:
        return Decimal(words[lowered])
    if _PT_GROUPED.fullmatch(text):
        normalized = text.replace(".", "").replace(",", ".")
    elif _EN_GROUPED.fullmatch(text):
        normalized = text.replace(",", "")
    elif _COMMA_DECIMAL.fullmatch(text):
        normalized = text.replace(",", ".")
    else:
        normalized = text
    try:
        return Decimal(normalized)
    except InvalidOperation:
        return None


def group_thousands(integer: int, separator: str) -> str:
    """``1234567`` -> ``"1.234.567"`` with ``separator="."``."""
    return f"{integer:,}".replace(",", separator)


def format_amount(value: Decimal, *, thousands: str, decimal: str, always_cents: bool) -> str:
    """Write a money amount: grouped integer part and two-digit cents.

    Args:
        value: the amount.
        thousands: the thousands separator ("." in pt-BR, "," in English).
        decimal: the decimal separator.
        always_cents: write ",00" for whole amounts (pt-BR) instead of omitting the cents.

    Returns:
        The amount without a currency symbol.
    """
    quantized = value.quantize(CENT)
    integer, cents = divmod(int(quantized * 100), 100)
    text = group_thousands(integer, thousands)
    if cents or always_cents:
        text += f"{decimal}{cents:02d}"
    return text


def format_plain(value: Decimal, decimal: str) -> str:
    """Write a value without grouping, with ``decimal`` as the decimal separator."""
    text = format(value.normalize(), "f") if value != value.to_integral() else str(int(value))
    return text.replace(".", decimal)


def whole_amount(
    amount: Decimal,
    scale: str,
    cents_text: str | None,
    *,
    thousand_word: str,
    parse: Callable[[str], Decimal | None],
) -> Decimal | None:
    """``amount`` with a "thousand" scale applied and spoken cents added.

    Returns:
        The value, or ``None`` when the parts do not compose (unreadable cents, or cents
        after an amount that already has decimals).
    """
    if scale == thousand_word:
        amount *= 1000
    if cents_text:
        cents = parse(cents_text)
        if cents is None or amount != amount.to_integral():
            return None
        amount += cents / 100
    return amount
