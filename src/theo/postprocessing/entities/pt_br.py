"""Brazilian Portuguese entity formatting: money, percentages, dates, times, documents.

Runs after ITN, so it reads numbers in digits ("2500 reais", NeMo's "R$ 2500") and the
small numbers that ITN keeps spelled out ("dois reais", "às duas horas"); it also reads
what Whisper writes on its own ("R$2500", "2.500 reais", "R$ 2.500,00").
Only text with an entity cue (a currency, "por cento", "de <mês> de <ano>", "às ... horas",
a document keyword) is rewritten; bare numbers such as years are left alone.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from theo.postprocessing.entities.amounts import (
    format_amount,
    format_plain,
    parse_number,
    whole_amount,
    word_alternation,
)
from theo.postprocessing.entities.pt_documents import format_documents
from theo.postprocessing.itn.builtin_pt import UNITS

_DIGIT_WORDS = {**UNITS, "dez": 10}
_WORD = rf"(?:{word_alternation(_DIGIT_WORDS)})\b"
_NUMBER = (
    r"(?:\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?(?!\d)"
    r"|\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?(?!\d)"
    r"|\d+(?:[.,]\d{1,2})?(?!\d))"
)
_AMOUNT = rf"(?:{_NUMBER}|{_WORD})"
_SP = r"[^\S\n]+"

_CURRENCY_WORDS = {
    "reais": "R$",
    "real": "R$",
    "dólares": "US$",
    "dólar": "US$",
    "dolares": "US$",
    "dolar": "US$",
    "euros": "€",
    "euro": "€",
}
_SYMBOLS = {"r$": "R$", "us$": "US$", "u$": "US$", "$": "US$", "€": "€"}
_SCALES = "mil|milhão|milhao|milhões|milhoes|bilhão|bilhao|bilhões|bilhoes|trilhão|trilhões"
# The cents, also after a pause the engine wrote as punctuation ("mil reais. E cinquenta
# centavos": the caller paused before the cents), but then only with the word centavos.
_CENTS = (
    rf"(?:{_SP}(?:e|com){_SP}(?P<cents>\d{{1,2}}(?!\d)|{_WORD})"
    rf"(?:{_SP}centavos?\b|(?=[^\S\n]*(?:[.,;:!?]|$)))"
    rf"|[^\S\n]*[.,;][^\S\n]*(?:e|com){_SP}(?P<paused_cents>\d{{1,2}}(?!\d)|{_WORD})"
    rf"{_SP}centavos?\b)"
)
_MONEY_SYMBOL = re.compile(
    rf"(?<![\w$])(?P<sym>R\$|US\$|U\$|\$|€)[^\S\n]?(?P<amount>{_AMOUNT})(?:{_SP}(?P<scale>{_SCALES})\b)?"
    rf"(?:(?:{_SP}de)?{_SP}(?:{word_alternation(_CURRENCY_WORDS)})\b)?{_CENTS}?",
    re.IGNORECASE,
)
_MONEY_WORD = re.compile(
    rf"(?<![\w$€.,])(?P<amount>{_AMOUNT})(?:{_SP}(?P<scale>{_SCALES})\b)?(?P<de>{_SP}de)?"
    rf"{_SP}(?P<word>{word_alternation(_CURRENCY_WORDS)})\b{_CENTS}?",
    re.IGNORECASE,
)
_CENTS_ONLY = re.compile(
    rf"(?<![\w$€.,])(?P<cents>\d{{1,2}}(?!\d)|{_WORD}){_SP}centavos?\b", re.IGNORECASE
)
# An amount, a pause written as punctuation, then its cents on their own ("R$ 1.200,00. E
# R$ 0,50", as an ITN engine that formats "cinquenta centavos" itself leaves them): one.
_PAUSED_CENTS = re.compile(
    rf"R\$[^\S\n](?P<whole>\d{{1,3}}(?:\.\d{{3}})*),00[^\S\n]*[.,;][^\S\n]*(?:e|com){_SP}"
    rf"R\$[^\S\n]0,(?P<cents>\d\d)(?![\d,])",
    re.IGNORECASE,
)
_PERCENT = re.compile(
    rf"(?<![\w.,])(?P<num>\d{{1,3}}(?:\.\d{{3}})+(?:,\d+)?(?!\d)|\d+(?:[.,]\d+)?(?!\d)|{_WORD})"
    rf"[^\S\n]*(?:%|por{_SP}cento\b|porcento\b)",
    re.IGNORECASE,
)
_DOT_DECIMAL = re.compile(r"\d+\.\d{1,2}")
_MONTHS = {
    "janeiro": 1,
    "fevereiro": 2,
    "março": 3,
    "marco": 3,
    "abril": 4,
    "maio": 5,
    "junho": 6,
    "julho": 7,
    "agosto": 8,
    "setembro": 9,
    "outubro": 10,
    "novembro": 11,
    "dezembro": 12,
}
_DATE = re.compile(
    rf"(?<!\w)(?P<day>\d{{1,2}}(?!\d)|1º|1°|primeiro\b|{_WORD}){_SP}de{_SP}"
    rf"(?P<month>{word_alternation(_MONTHS)}){_SP}de{_SP}(?P<year>\d{{4}})(?!\d)",
    re.IGNORECASE,
)
# Minutes after "e": "meia", two digits ("e 15"), or any count followed by "minutos"/"min".
_MINUTES = (
    r"(?:(?P<half{n}>meia)\b|(?P<min{n}>\d{{2}})(?!\d)(?:{sp}(?:minutos?|min)\b)?"
    r"|(?P<word{n}>\d(?!\d)|{word}){sp}(?:minutos?|min)\b)"
)
_TIME = re.compile(
    rf"(?<!\w)(?P<prep>às){_SP}(?P<hour>\d{{1,2}}(?!\d)|{_WORD})"
    rf"(?:(?:{_SP}horas?\b|[^\S\n]?h(?P<compact>\d{{2}})?\b)"
    rf"(?:{_SP}e{_SP}{_MINUTES.format(n=1, sp=_SP, word=_WORD)})?"
    rf"|{_SP}e{_SP}{_MINUTES.format(n=2, sp=_SP, word=_WORD)})",
    re.IGNORECASE,
)


# "dois mil e quinhentos reais" heard piecewise (a streaming decode commits "2000" before
# "e quinhentos" is spoken) comes out as "2000 e 500 reais": one amount, not two.
_SPLIT_THOUSANDS = re.compile(
    rf"(?P<sym>(?:R\$|US\$|U\$|\$|€)[^\S\n]?)?(?<![\w.,])(?P<big>[1-9]\d{{0,2}}\.?000)(?![\d.,]\d)"
    rf"{_SP}e{_SP}(?P<sym2>(?:R\$|US\$|U\$|\$|€)[^\S\n]?)?(?P<small>[1-9]\d{{0,2}})(?![\d]|[.,]\d|{_SP}centavos?\b)"
    rf"(?P<unit>(?:{_SP}de)?{_SP}(?:{word_alternation(_CURRENCY_WORDS)})\b)?",
    re.IGNORECASE,
)


def _join_split_thousands(match: re.Match[str]) -> str:
    symbol = match.group("sym") or match.group("sym2")
    if not match.group("unit") and not (symbol and len(match.group("small")) == 3):
        # "1000 e 200" alone may well be two numbers, and "R$ 2000 e 50" has cents.
        return match.group()
    total = int(match.group("big").replace(".", "")) + int(match.group("small"))
    return f"{symbol or ''}{total}{match.group('unit') or ''}"


def _value(text: str) -> Decimal | None:
    return parse_number(text, _DIGIT_WORDS)


def _money(match: re.Match[str], symbol: str) -> str:
    amount = _value(match.group("amount"))
    scale = (match.group("scale") or "").lower()
    cents_text = match.group("cents") or match.group("paused_cents")
    if amount is None or (match.groupdict().get("de") and scale in ("", "mil")):
        return match.group()
    if scale and scale != "mil":
        if cents_text:
            return match.group()
        return f"{symbol} {format_plain(amount, ',')} {match.group('scale')}"
    value = whole_amount(amount, scale, cents_text, thousand_word="mil", parse=_value)
    if value is None:
        return match.group()
    return f"{symbol} {format_amount(value, thousands='.', decimal=',', always_cents=True)}"


def _money_symbol(match: re.Match[str]) -> str:
    return _money(match, _SYMBOLS[match.group("sym").lower()])


def _money_word(match: re.Match[str]) -> str:
    return _money(match, _CURRENCY_WORDS[match.group("word").lower()])


def _paused_cents(match: re.Match[str]) -> str:
    return f"R$ {match.group('whole')},{match.group('cents')}"


def _cents_only(match: re.Match[str]) -> str:
    cents = _value(match.group("cents"))
    if cents is None:
        return match.group()
    return f"R$ {format_amount(cents / 100, thousands='.', decimal=',', always_cents=True)}"


def _percent(match: re.Match[str]) -> str:
    number = match.group("num")
    if number.lower() in _DIGIT_WORDS:
        number = str(_DIGIT_WORDS[number.lower()])
    elif _DOT_DECIMAL.fullmatch(number):
        number = number.replace(".", ",")
    return f"{number}%"


def _date(match: re.Match[str]) -> str:
    day_text = match.group("day").lower()
    day = 1 if day_text in ("1º", "1°", "primeiro") else _value(day_text)
    try:
        when = date(int(match.group("year")), _MONTHS[match.group("month").lower()], int(day or 0))
    except ValueError:
        return match.group()
    return when.strftime("%d/%m/%Y")


def _time(match: re.Match[str]) -> str:
    hour = _value(match.group("hour"))
    minute = _value(match.group("compact") or "0")
    for n in (1, 2):
        if match.group(f"half{n}"):
            minute = Decimal(30)
        elif match.group(f"min{n}") or match.group(f"word{n}"):
            minute = _value(match.group(f"min{n}") or match.group(f"word{n}"))
    if hour is None or minute is None or not (0 <= hour <= 23 and 0 <= minute <= 59):
        return match.group()
    return f"{match.group('prep')} {int(hour)}:{int(minute):02d}"


def format_entities_pt(text: str, *, money: bool = True) -> str:
    """Format Brazilian entities in ``text``.

    Args:
        text: Portuguese text after ITN.
        money: format money (``False`` leaves amounts as ITN wrote them).

    Returns:
        The text with money as ``R$ 1.234,50``, percentages as ``20%``, full dates as
        ``15/03/2024``, times after "às" as ``14:30``, and CPF, CNPJ and phone numbers
        in their standard forms.
    """
    text = format_documents(text)
    text = _SPLIT_THOUSANDS.sub(_join_split_thousands, text)
    if money:
        text = _MONEY_SYMBOL.sub(_money_symbol, text)
        text = _MONEY_WORD.sub(_money_word, text)
        text = _CENTS_ONLY.sub(_cents_only, text)
        text = _PAUSED_CENTS.sub(_paused_cents, text)
    text = _PERCENT.sub(_percent, text)
    text = _DATE.sub(_date, text)
    return _TIME.sub(_time, text)
