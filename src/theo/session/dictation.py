"""Whether the words heard so far stop inside something being dictated.

Callers dictate a CPF, a phone or card number, a protocol number or an amount in groups,
with pauses between them ("um dois três ... quatro cinco seis ..."). A segment cut at each
pause is formatted piece by piece ("1, 2, 3." "4, 5, 6."), so while the text of the open
segment ends inside such an entity, the session waits longer before ending it.

The test is on the raw partial text (what the engine wrote: digits or number words), and
deliberately simple: the text ends with a digit or a number word, with a word that
announces a number ("CPF", "telefone", "card number", "meu CPF é"), or with a currency
word whose cents may follow ("reais", "dollars"). Ordinary speech rarely ends that way,
and when it does the cost is one longer wait.
"""

from __future__ import annotations

import re
import unicodedata

_PT_NUMBERS = (
    "zero um uma dois duas tres quatro cinco seis sete oito nove dez onze doze treze "
    "quatorze catorze quinze dezesseis dezessete dezoito dezenove vinte trinta quarenta "
    "cinquenta sessenta setenta oitenta noventa cem cento duzentos duzentas trezentos "
    "trezentas quatrocentos quatrocentas quinhentos quinhentas seiscentos seiscentas "
    "setecentos setecentas oitocentos oitocentas novecentos novecentas mil milhao milhoes meia"
)
_EN_NUMBERS = (
    "oh one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy "
    "eighty ninety hundred thousand million double triple"
)
_NUMBER_WORDS = frozenset(f"{_PT_NUMBERS} {_EN_NUMBERS}".split())
# Words that announce a number (Portuguese, then English).
_ENTITY_WORDS = (
    "cpf cnpj rg cep telefone celular fone whatsapp cartao protocolo conta agencia numero "
    "pix codigo senha matricula placa valor total preco saldo quantia parcela "
    "number phone card account code zip pin amount price balance total"
)
_ANNOUNCING = frozenset(_ENTITY_WORDS.split())
# Words after which a number is expected only when an entity word comes just before them
# ("meu CPF é", "my number is"): alone they end ordinary sentences too.
_LINKS = frozenset({"e", "eh", "sao", "is", "was"})
_CURRENCY = frozenset({"real", "reais", "dolar", "dolares", "dollar", "dollars", "euro", "euros"})
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_DIGITS = re.compile(r"\d")


def _plain(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def ends_inside_entity(text: str) -> bool:
    """Whether ``text`` (a partial's raw words) stops where a dictated entity goes on."""
    words = [_plain(w) for w in _WORD.findall(text)]
    if not words:
        return False
    last = words[-1]
    if _DIGITS.search(last) or last in _NUMBER_WORDS or last in _CURRENCY:
        return True
    if last in _LINKS:
        return len(words) > 1 and words[-2] in _ANNOUNCING
    return last in _ANNOUNCING


def starts_inside_entity(text: str) -> bool:
    """Whether ``text`` (a final's raw words) opens with what continues a dictated entity:
    a digit or a number word, possibly after "e"/"and" ("e cinquenta centavos")."""
    words = [_plain(w) for w in _WORD.findall(text)][:2]
    if words and words[0] in {"e", "and"}:
        words = words[1:]
    return bool(words) and (bool(_DIGITS.search(words[0])) or words[0] in _NUMBER_WORDS)


def same_words(first: str, second: str) -> bool:
    """Whether two texts hold the same words, ignoring case and punctuation."""
    return [_plain(w) for w in _WORD.findall(first)] == [_plain(w) for w in _WORD.findall(second)]
