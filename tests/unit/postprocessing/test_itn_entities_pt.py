"""pt-BR ITN and entity formatting through the whole chain, with the built-in ITN engine.

The same tables run through NeMo in tests/integration/test_itn_nemo.py.
"""

from __future__ import annotations

import pytest

from theo.manifest import PostProcessingConfig
from theo.postprocessing import PostProcessingChain

MONEY = [
    ("dois mil e quinhentos reais", "R$ 2.500,00"),
    ("mil duzentos e trinta e quatro reais e cinquenta centavos", "R$ 1.234,50"),
    ("1.234 reais e 50 centavos", "R$ 1.234,50"),
    ("R$ 2500", "R$ 2.500,00"),
    ("R$2500", "R$ 2.500,00"),
    ("2.500 reais", "R$ 2.500,00"),
    ("2500 reais", "R$ 2.500,00"),
    ("R$ 2.500,00", "R$ 2.500,00"),
    ("R$ 2.500 reais", "R$ 2.500,00"),
    # A streaming decode commits "2000" before "e quinhentos" is heard.
    ("É de 2000 e 500 reais.", "É de R$ 2.500,00."),
    ("R$ 2000 e 500", "R$ 2.500,00"),
    ("É de 2000 e R$ 500.", "É de R$ 2.500,00."),
    ("2000 e 50 reais", "R$ 2.050,00"),
    ("R$ 2000 e 50 centavos", "R$ 2.000,50"),
    ("R$ 1234,5", "R$ 1.234,50"),
    ("cinquenta centavos", "R$ 0,50"),
    ("50 centavos", "R$ 0,50"),
    ("um real", "R$ 1,00"),
    ("um real e cinquenta centavos", "R$ 1,50"),
    ("dois reais e cinquenta.", "R$ 2,50."),
    # A pause before the cents, written as a full stop: one amount when centavos is said.
    ("O valor é mil e duzentos reais. E cinquenta centavos.", "O valor é R$ 1.200,50."),
    ("Dez reais. E cinco.", "R$ 10,00. E cinco."),
    ("cem reais", "R$ 100,00"),
    ("Mil reais.", "R$ 1.000,00."),
    ("2 mil reais", "R$ 2.000,00"),
    ("R$ 2,5 mil", "R$ 2.500,00"),
    ("dois milhões de reais", "R$ 2 milhões"),
    ("R$ 2 milhões", "R$ 2 milhões"),
    ("dois vírgula cinco milhões de reais", "R$ 2,5 milhões"),
    ("cem dólares", "US$ 100,00"),
    ("$ 100", "US$ 100,00"),
    ("Paguei dois mil e quinhentos reais, ok?", "Paguei R$ 2.500,00, ok?"),
    (
        "A fatura é de trezentos e quarenta e cinco reais e noventa centavos.",
        "A fatura é de R$ 345,90.",
    ),
]

DOCUMENTS = [
    (
        "o cpf é um dois três quatro cinco seis sete oito nove zero zero",
        "o cpf é 123.456.789-00",
    ),
    ("Meu CPF é 12345678900.", "Meu CPF é 123.456.789-00."),
    ("CPF: 123.456.789.00", "CPF: 123.456.789-00"),
    ("o CPF do titular é 123 456 789 00", "o CPF do titular é 123.456.789-00"),
    ("123.456.789-00", "123.456.789-00"),
    (
        "CPF cento e vinte e três, quatrocentos e cinquenta e seis, "
        "setecentos e oitenta e nove, zero zero",
        "CPF 123.456.789-00",
    ),
    (
        "o cnpj é um dois três quatro cinco seis sete oito zero zero zero um nove zero",
        "o cnpj é 12.345.678/0001-90",
    ),
    ("CNPJ 12345678000190", "CNPJ 12.345.678/0001-90"),
    ("12.345.678/0001-90", "12.345.678/0001-90"),
]

PHONES = [
    # A pause after the keyword, written as a full stop, and the digits in groups.
    ("Meu telefone. É 11. 9.8.7.6.5. 4.3.2.1.", "Meu telefone. É (11) 98765-4321."),
    ("Meu CPF. É 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0.", "Meu CPF. É 123.456.789-00."),
    (
        "o telefone é onze nove oito sete meia cinco quatro três dois um",
        "o telefone é (11) 98765-4321",
    ),
    ("meu celular é 11 98765-4321", "meu celular é (11) 98765-4321"),
    (
        "telefone fixo onze três quatro cinco seis sete oito nove zero",
        "telefone fixo (11) 3456-7890",
    ),
    (
        "ligue para zero oitocentos sete sete zero um dois três quatro",
        "ligue para 0800 770 1234",
    ),
    ("0800 770 1234", "0800 770 1234"),
    ("(11) 987654321", "(11) 98765-4321"),
    ("meu whatsapp é 21 3456 7890", "meu whatsapp é (21) 3456-7890"),
]

CARDS = [
    (
        "o número do cartão é quatro um um um, um um um um, um um um um, um um um um",
        "o número do cartão é 4111 1111 1111 1111",
    ),
    (
        "Cartão de crédito: três sete oito dois, oito dois dois quatro seis três, "
        "um zero zero zero cinco.",
        "Cartão de crédito: 3782 822463 10005.",
    ),
    ("cartão de débito 4111111111111111", "cartão de débito 4111 1111 1111 1111"),
    ("meu cartão é 4111 1111 1111 1111", "meu cartão é 4111 1111 1111 1111"),
]

PERCENTAGES = [
    ("vinte por cento", "20%"),
    ("20 por cento", "20%"),
    ("3,5 por cento", "3,5%"),
    ("três vírgula cinco por cento", "3,5%"),
    ("cinco por cento de desconto", "5% de desconto"),
    ("cem por cento", "100%"),
]

DATES_AND_TIMES = [
    ("quinze de março de dois mil e vinte e quatro", "15/03/2024"),
    ("nasceu em primeiro de janeiro de dois mil", "nasceu em 01/01/2000"),
    ("vence dia 5 de maio de 2025", "vence dia 05/05/2025"),
    ("às catorze horas e trinta minutos", "às 14:30"),
    ("Às duas horas", "Às 2:00"),
    ("às duas e meia", "às 2:30"),
    ("às quinze e quinze", "às 15:15"),
    ("a reunião é às 9 horas", "a reunião é às 9:00"),
    ("às 14h30", "às 14:30"),
    ("às 2 h", "às 2:00"),
]

NUMBERS = [
    ("Ele tem trinta e dois anos.", "Ele tem 32 anos."),
    ("vinte e duas pessoas", "22 pessoas"),
    ("doze mil pessoas", "12000 pessoas"),
    ("um milhão de pessoas", "1 milhão de pessoas"),
    ("três vírgula vinte e cinco", "3,25"),
    ("em dois mil e vinte e quatro", "em 2024"),
    ("Nasci em mil novecentos e noventa.", "Nasci em 1990."),
    ("entre cinco e dez", "entre cinco e 10"),
]

# Text that must come back unchanged: articles, small counts, years, idioms, numbers
# without an entity cue, and half-formed entities.
NEGATIVES = [
    ("um carro", "um carro"),
    ("comprei um livro", "comprei um livro"),
    ("Uma pessoa ligou.", "Uma pessoa ligou."),
    ("três pessoas", "três pessoas"),
    ("em 2024", "em 2024"),
    ("2 mil pessoas", "2 mil pessoas"),
    ("entre 1000 e 200 livros", "entre 1000 e 200 livros"),
    ("meio-dia", "meio-dia"),
    ("ao meio-dia e meia", "ao meio-dia e meia"),
    ("meia hora", "meia hora"),
    ("por cento", "por cento"),
    ("primeiro lugar", "primeiro lugar"),
    ("Obrigado, tenha um bom dia.", "Obrigado, tenha um bom dia."),
    ("O valor real do imóvel", "O valor real do imóvel"),
    ("dois casos reais", "dois casos reais"),
    ("o número do pedido é 12345678900", "o número do pedido é 12345678900"),
    ("o CPF é um documento", "o CPF é um documento"),
    ("a temporada 23 2024-2025", "a temporada 23 2024-2025"),
    ("11 98765-4321", "(11) 98765-4321"),
    ("quinze de março", "15 de março"),
    ("trinta e um de fevereiro de dois mil e vinte e quatro", "31 de fevereiro de 2024"),
    ("trabalhei catorze horas e trinta minutos", "trabalhei 14 horas e 30 minutos"),
    ("as duas horas de espera", "as duas horas de espera"),
    ("o cartão final 1234", "o cartão final 1234"),
    (
        "Paguei com o cartão de crédito dois mil reais.",
        "Paguei com o cartão de crédito R$ 2.000,00.",
    ),
]

CASES = MONEY + DOCUMENTS + PHONES + CARDS + PERCENTAGES + DATES_AND_TIMES + NUMBERS + NEGATIVES


@pytest.fixture(scope="module")
def chain() -> PostProcessingChain:
    return PostProcessingChain.build(PostProcessingConfig(itn_backend="builtin"))


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({spoken for spoken, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("spoken", "written"), CASES, ids=[spoken for spoken, _ in CASES])
def test_pt_br(chain: PostProcessingChain, spoken: str, written: str) -> None:
    assert chain.process(spoken, "pt") == written


@pytest.mark.parametrize("language", ["pt-BR", "pt_BR", "PT"])
def test_region_and_case_variants_of_the_language_code(
    chain: PostProcessingChain, language: str
) -> None:
    assert chain.process("vinte por cento", language) == "20%"


@pytest.mark.parametrize("language", [None, "es", "fr"])
def test_other_languages_pass_through(chain: PostProcessingChain, language: str | None) -> None:
    assert chain.process("dois mil e quinhentos reais", language) == "dois mil e quinhentos reais"


def test_formatting_is_idempotent(chain: PostProcessingChain) -> None:
    for _, written in CASES:
        assert chain.process(written, "pt") == written
