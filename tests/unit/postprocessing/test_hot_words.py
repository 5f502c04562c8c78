"""Hot-word correction: near matches respelled, look-alike common words left alone."""

from __future__ import annotations

import pytest

from theo.postprocessing.hot_words import HotWordCorrector, fold, phonetic_key

BANKING = [
    "PIX",
    "TED",
    "Itaú",
    "Banco Itaú",
    "Bradesco",
    "Nubank",
    "Mercado Pago",
    "WhatsApp",
    "Santander",
    "Cielo",
]

POSITIVES = [
    ("paguei no pix", "paguei no PIX"),
    ("Pix, pix. PIX!", "PIX, PIX. PIX!"),
    ("fiz uma ted", "fiz uma TED"),
    ("conta no itau", "conta no Itaú"),
    ("conta no ITAÚ", "conta no Itaú"),
    ("conta no banco itau", "conta no Banco Itaú"),
    ("conta no Banco Itaú", "conta no Banco Itaú"),
    ("cartão do bradescu", "cartão do Bradesco"),
    ("no banco santandé", "no banco Santander"),
    ("maquininha da sielo", "maquininha da Cielo"),
    # Whisper's usual mishearings of "PIX", matched by sound.
    ("fiz um pics de cem reais", "fiz um PIX de cem reais"),
    ("mandei um picks", "mandei um PIX"),
    ("faz um piques pra mim", "faz um PIX pra mim"),
    # Split or joined differently from the hot word.
    ("conta no nu bank", "conta no Nubank"),
    ("me chama no whats app", "me chama no WhatsApp"),
    ("paguei pelo mercadopago", "paguei pelo Mercado Pago"),
    ("paguei pelo mercado pago", "paguei pelo Mercado Pago"),
]

# Real Portuguese words that resemble a hot word by letters or by sound.
NEGATIVES = [
    "o conserto do fix",
    "lavei a pia",
    "o pis do trabalhador",
    "comprei peixe",
    "eu fiz isso",
    "um pixel queimado",
    "estou no pique",
    "os picos da serra",
    "soltei pipa",
    "o tatu fugiu",
    "ital",
    "um iate no mar",
    "os itens da lista",
    "ele tem razão",
    "ele teve sorte",
    "estou com sede",
    "a rede caiu",
    "um pão fresco",
    "o mercado largo",
    "o mercado pagou",
    "a santa ana",
    "o céu azul",
    "o selo do correio",
    "a cela da prisão",
]


@pytest.fixture(scope="module")
def corrector() -> HotWordCorrector:
    return HotWordCorrector(BANKING, threshold=85)


@pytest.mark.parametrize(("heard", "corrected"), POSITIVES, ids=[h for h, _ in POSITIVES])
def test_near_matches_are_respelled(
    corrector: HotWordCorrector, heard: str, corrected: str
) -> None:
    assert corrector.process(heard, "pt") == corrected


@pytest.mark.parametrize("text", NEGATIVES)
def test_look_alike_words_are_left_alone(corrector: HotWordCorrector, text: str) -> None:
    assert corrector.process(text, "pt") == text


def test_threshold_decides_fuzzy_matches() -> None:
    assert HotWordCorrector(["Bradesco"], threshold=85).process("bradescu", "pt") == "Bradesco"
    assert HotWordCorrector(["Bradesco"], threshold=90).process("bradescu", "pt") == "bradescu"
    assert HotWordCorrector(["Bradesco"], threshold=90).process("bradesco", "pt") == "Bradesco"


def test_short_hot_words_are_never_matched_fuzzily() -> None:
    # "itaus" is one edit (ratio 89) from "itau": too little evidence on a short word.
    assert HotWordCorrector(["Itaú"], threshold=50).process("itaus", "pt") == "itaus"


def test_common_words_depend_on_the_transcript_language() -> None:
    corrector = HotWordCorrector(["PIX"])
    assert corrector.process("mandei um picks", "pt") == "mandei um PIX"
    # "picks" and "pics" are common English words.
    assert corrector.process("he picks a card", "en") == "he picks a card"
    # With no language, words common in Portuguese or English are both protected.
    assert corrector.process("mandei um pics", None) == "mandei um pics"


def test_exact_matches_replace_even_common_words() -> None:
    assert HotWordCorrector(["Claro"]).process("meu chip da claro", "pt") == "meu chip da Claro"


def test_multi_word_hot_word_wins_over_its_part() -> None:
    corrector = HotWordCorrector(["Itaú", "Banco Itaú"])
    assert corrector.process("banco itau e itau", "pt") == "Banco Itaú e Itaú"


def test_matches_never_span_punctuation() -> None:
    corrector = HotWordCorrector(["Mercado Pago"])
    assert corrector.process("o mercado. Pago depois", "pt") == "o mercado. Pago depois"


def test_first_spelling_wins_among_duplicates() -> None:
    corrector = HotWordCorrector(["PIX", "pix", "  Pix "])
    assert [h.text for h in corrector.hot_words] == ["PIX"]


@pytest.mark.parametrize("text", ["", "   ", "nada a corrigir"])
def test_texts_without_matches_are_unchanged(corrector: HotWordCorrector, text: str) -> None:
    assert corrector.process(text, "pt") == text


def test_no_hot_words_is_a_no_op() -> None:
    assert HotWordCorrector([]).process("pix", "pt") == "pix"


def test_digits_are_only_matched_exactly() -> None:
    corrector = HotWordCorrector(["Vivo 5G"])
    assert corrector.process("chip vivo 5g", "pt") == "chip Vivo 5G"
    assert corrector.process("chip vivo 4g", "pt") == "chip vivo 4g"


def test_fold_and_phonetic_key() -> None:
    assert fold("ITAÚ Ação") == "itau acao"
    assert {phonetic_key(w) for w in ("pix", "pics", "picks", "piques")} == {"piks"}
    assert phonetic_key("fix") != phonetic_key("pix")
