"""Brazilian document, phone and card numbers: CPF, CNPJ, telephone and card formatting.

A bare run of 11 or 14 digits is ambiguous (account, protocol and order numbers look
the same), so a run is formatted only when a keyword ("CPF", "CNPJ", "telefone",
"celular", "cartão", ...) introduces it, or when it is already grouped exactly like the
entity (``123.456.789-00``, ``12.345.678/0001-90``, ``(11) 98765-4321``, ``0800 ...``).
Card numbers are formatted only after a keyword.
After a keyword the digits may be written, spoken one by one, grouped with dots,
dashes or spaces, or mis-grouped by an ITN engine as a phone number.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from theo.postprocessing.entities.amounts import word_alternation
from theo.postprocessing.entities.cards import format_card
from theo.postprocessing.itn.builtin_pt import UNITS

DOCUMENT_DIGITS = {**UNITS, "meia": 6}
"""Digit words read inside a dictated number ("meia" is 6 when dictating)."""

_TOKEN = rf"(?:\d+|(?:{word_alternation(DOCUMENT_DIGITS)})\b)"
_SEPARATOR = (
    r"(?:[^\S\n]*[.\-/(),:][^\S\n]*|[^\S\n]+(?:(?:ponto|tra[çc]o|h[íi]fen|barra)[^\S\n]+)?)"
)
_SPAN = rf"(?P<span>\(?{_TOKEN}(?:{_SEPARATOR}\(?{_TOKEN}\)?)*)"
# Each filler is preceded by exactly one kind of gap, so a failed match cannot backtrack
# through exponentially many ways of splitting the spaces.
# A full stop counts as a gap too: a caller who pauses after "meu telefone" gets one
# written ("Meu telefone. É 11 ...").
_GAP = r"(?:[^\S\n]*[:,.][^\S\n]*|[^\S\n]+)"
_FILLERS = (
    rf"(?:{_GAP}(?:é|e|o|a|do|da|de|meu|minha|seu|sua|número|numero|nº|"
    rf"dele|dela|titular|cliente|para|pra|no|com|ddd|fixo)\b)*{_GAP}?"
)
_DIGIT_TOKEN = re.compile(_TOKEN, re.IGNORECASE)

_CNPJ_CONTEXT = re.compile(rf"\bcnpj\b{_FILLERS}{_SPAN}", re.IGNORECASE)
_CPF_CONTEXT = re.compile(rf"\bcpf\b{_FILLERS}{_SPAN}", re.IGNORECASE)
_PHONE_CONTEXT = re.compile(
    rf"\b(?:telefone|celular|fone|whatsapp|whats|zap|contato|"
    rf"(?:ligue|ligar|liga|ligou)[^\S\n]+(?:para|pra|no))\b{_FILLERS}{_SPAN}",
    re.IGNORECASE,
)
# "cartão de crédito", "número do cartão é": the card kind is said before the fillers.
_CARD_CONTEXT = re.compile(
    rf"\bcart[ãa]o(?:[^\S\n]+de[^\S\n]+(?:cr[ée]dito|d[ée]bito))?\b{_FILLERS}{_SPAN}",
    re.IGNORECASE,
)
_CNPJ_GROUPED = re.compile(r"(?<![\d.,/])(\d{2})\.?(\d{3})\.?(\d{3})/(\d{4})-?(\d{2})(?!\d)")
_CPF_GROUPED = re.compile(
    r"(?<![\d.,/-])(\d{3})[.\s](\d{3})[.\s](\d{3})[-.\s](\d{2})(?![\d]|[.,/-]\d)"
)
_TOLL_FREE = re.compile(
    r"(?<![\d.,])(?:0|zero)[ ]?([3589]00)[ .-]?(\d{3})[ .-]?(\d{4})(?!\d)", re.IGNORECASE
)
_PHONE_PARENS = re.compile(r"\((\d{2})\)[^\S\n]*(\d{4,5})[-\s]?(\d{4})(?!\d)")
# Without a keyword only the mobile shape "11 98765-4321" is a phone: "23 2024-2025" is not.
_PHONE_AREA = re.compile(r"(?<![\d.,/-])(\d{2})[^\S\n](9\d{4})-(\d{4})(?!\d)")

_TOLL_FREE_PREFIXES = ("0300", "0500", "0800", "0900")


def format_cpf(digits: str) -> str:
    """``12345678900`` -> ``123.456.789-00``."""
    return f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}"


def format_cnpj(digits: str) -> str:
    """``12345678000190`` -> ``12.345.678/0001-90``."""
    return f"{digits[:2]}.{digits[2:5]}.{digits[5:8]}/{digits[8:12]}-{digits[12:]}"


def format_phone(digits: str) -> str | None:
    """Write 8 to 13 phone digits the Brazilian way, or ``None`` if they cannot be a phone."""
    if len(digits) == 11 and digits.startswith(_TOLL_FREE_PREFIXES):
        return f"{digits[:4]} {digits[4:7]} {digits[7:]}"
    if len(digits) == 13 and digits.startswith("55"):
        local = format_phone(digits[2:])
        return f"+55 {local}" if local else None
    if len(digits) in (10, 11) and digits[0] != "0":
        return f"({digits[:2]}) {digits[2:-4]}-{digits[-4:]}"
    if (len(digits) == 9 and digits[0] == "9") or len(digits) == 8:
        return f"{digits[:-4]}-{digits[-4:]}"
    return None


def _digits_prefix(span: str, counts: tuple[int, ...]) -> tuple[str, int] | None:
    """Read digit tokens from ``span`` until their digits reach the largest count.

    Returns the digits and the offset in ``span`` where they end, for the longest
    prefix whose digit count is in ``counts``; ``None`` if there is none.
    """
    digits, best = "", None
    for token in _DIGIT_TOKEN.finditer(span):
        word = token.group().lower()
        digits += word if word.isdigit() else str(DOCUMENT_DIGITS[word])
        if len(digits) > max(counts):
            break
        if len(digits) in counts:
            best = (digits, token.end())
    return best


def _contextual(
    counts: tuple[int, ...], render: Callable[[str], str | None]
) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        found = _digits_prefix(match.group("span"), counts)
        if found is None:
            return match.group()
        digits, end = found
        rendered = render(digits)
        if rendered is None:
            return match.group()
        span_start = match.start("span") - match.start()
        whole = match.group()
        return whole[:span_start] + rendered + whole[span_start + end :]

    return replace


def _grouped_phone(match: re.Match[str]) -> str:
    return format_phone("".join(match.groups())) or match.group()


def format_documents(text: str) -> str:
    """Format CPF, CNPJ and phone numbers in Portuguese text.

    Args:
        text: text after ITN (digits, or digit words where ITN kept them).

    Returns:
        The text with recognised numbers in their standard written form; card numbers
        after "cartão" as ``4111 1111 1111 1111`` (16 digits) or ``3782 822463 10005``
        (15).
    """
    text = _CNPJ_CONTEXT.sub(_contextual((14,), format_cnpj), text)
    text = _CPF_CONTEXT.sub(_contextual((11,), format_cpf), text)
    text = _PHONE_CONTEXT.sub(_contextual((8, 9, 10, 11, 13), format_phone), text)
    text = _CARD_CONTEXT.sub(_contextual((15, 16), format_card), text)
    text = _CNPJ_GROUPED.sub(lambda m: format_cnpj("".join(m.groups())), text)
    text = _CPF_GROUPED.sub(lambda m: format_cpf("".join(m.groups())), text)
    text = _TOLL_FREE.sub(lambda m: f"0{m.group(1)} {m.group(2)} {m.group(3)}", text)
    text = _PHONE_PARENS.sub(_grouped_phone, text)
    return _PHONE_AREA.sub(_grouped_phone, text)
