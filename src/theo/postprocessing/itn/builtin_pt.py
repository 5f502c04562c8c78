"""Built-in Portuguese inverse text normalization: number words to digits.

A light fallback for when the NeMo grammars are not installed or not built yet. It writes
numbers the way NeMo's Portuguese grammars do ("2500", "1 milhão", "3,5"), so the entity
formatter that runs next sees the same shapes from either engine.
"""

from __future__ import annotations

from theo.postprocessing.itn.cardinal import Lexicon, normalize_numbers

UNITS = {
    "zero": 0,
    "um": 1,
    "uma": 1,
    "dois": 2,
    "duas": 2,
    "três": 3,
    "tres": 3,
    "quatro": 4,
    "cinco": 5,
    "seis": 6,
    "sete": 7,
    "oito": 8,
    "nove": 9,
}
"""Digit words, including the feminine forms and the unaccented "tres"."""

_TEENS = {
    "dez": 10,
    "onze": 11,
    "doze": 12,
    "treze": 13,
    "catorze": 14,
    "quatorze": 14,
    "quinze": 15,
    "dezesseis": 16,
    "dezasseis": 16,
    "dezessete": 17,
    "dezassete": 17,
    "dezoito": 18,
    "dezenove": 19,
    "dezanove": 19,
}
_TENS = {
    "vinte": 20,
    "trinta": 30,
    "quarenta": 40,
    "cinquenta": 50,
    "cinqüenta": 50,
    "sessenta": 60,
    "setenta": 70,
    "oitenta": 80,
    "noventa": 90,
}
_HUNDREDS = {
    "cem": 100,
    "cento": 100,
    **{
        f"{stem}{ending}": value
        for stem, value in (
            ("duzent", 200),
            ("trezent", 300),
            ("quatrocent", 400),
            ("quinhent", 500),
            ("seiscent", 600),
            ("setecent", 700),
            ("oitocent", 800),
            ("novecent", 900),
        )
        for ending in ("os", "as")
    },
}
_SCALES = {
    "mil": 10**3,
    "milhão": 10**6,
    "milhao": 10**6,
    "milhões": 10**6,
    "milhoes": 10**6,
    "bilhão": 10**9,
    "bilhao": 10**9,
    "bilhões": 10**9,
    "bilhoes": 10**9,
    "trilhão": 10**12,
    "trilhões": 10**12,
}

PORTUGUESE = Lexicon(
    units=UNITS,
    teens=_TEENS,
    tens=_TENS,
    hundreds=_HUNDREDS,
    bound_hundreds=frozenset({"cento"}),
    hundreds_connector=True,
    scales=_SCALES,
    bare_scales=frozenset({"mil"}),
    connectors=frozenset({"e"}),
    tens_connector="e",
    # Like NeMo's pt grammars: "um" is also the article, and 0-9 are spelled out in prose.
    spelled_below=10,
    decimal_words=frozenset({"vírgula", "virgula"}),
    decimal_separator=",",
    # Brazilians say "meia" (meia dúzia) for 6 when dictating digits.
    run_only_units={"meia": 6},
)


def normalize_pt(text: str) -> str:
    """Rewrite Portuguese number words in ``text`` as digits.

    Args:
        text: Portuguese text, as an ASR engine writes it.

    Returns:
        The text with number phrases of 10 or more, decimals and spoken digit runs
        written in digits; other words unchanged.
    """
    return normalize_numbers(text, PORTUGUESE)
