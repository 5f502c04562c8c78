"""English ITN and entity formatting through the whole chain, with the built-in ITN engine.

The same table runs through NeMo in tests/integration/test_itn_nemo.py.
"""

from __future__ import annotations

import pytest

from theo.manifest import PostProcessingConfig
from theo.postprocessing import PostProcessingChain

MONEY = [
    ("one thousand two hundred thirty four dollars and fifty cents", "$1,234.50"),
    ("1234 dollars", "$1,234"),
    ("$1234.50", "$1,234.50"),
    ("$1,234.50", "$1,234.50"),
    ("$5.5", "$5.50"),
    ("fifty cents", "$0.50"),
    ("one dollar", "$1"),
    ("five dollars", "$5"),
    ("twelve hundred dollars", "$1,200"),
    ("two million dollars", "$2 million"),
    ("$2 million", "$2 million"),
    ("2.5 million dollars", "$2.5 million"),
    ("five thousand dollars", "$5,000"),
    ("The price is twenty dollars and ninety nine cents.", "The price is $20.99."),
    ("I paid $1,234.50 yesterday.", "I paid $1,234.50 yesterday."),
]

PERCENTAGES = [
    ("twenty percent", "20%"),
    ("Twenty percent of people agree.", "20% of people agree."),
    ("three point five percent", "3.5%"),
    ("twenty five percent", "25%"),
    ("one percent", "1%"),
    ("He scored one hundred percent", "He scored 100%"),
]

NUMBERS = [
    ("in nineteen ninety", "in 1990"),
    ("It was twenty twenty four.", "It was 2024."),
    ("nineteen oh five", "1905"),
    ("twenty-five people", "25 people"),
    ("one hundred and five people", "105 people"),
    ("two million people", "2 million people"),
    ("five thousand people", "5000 people"),
    ("one point five", "1.5"),
    ("He is forty two years old.", "He is 42 years old."),
    ("one two three four", "1234"),
]

# "one" as a pronoun or article, small counts, and idioms stay as they are.
NEGATIVES = [
    ("one of them", "one of them"),
    ("the one", "the one"),
    ("I want one.", "I want one."),
    ("three people", "three people"),
    ("ten people", "ten people"),
    ("a hundred people", "a hundred people"),
    ("That's the point.", "That's the point."),
    ("No one knows.", "No one knows."),
]

CASES = MONEY + PERCENTAGES + NUMBERS + NEGATIVES


@pytest.fixture(scope="module")
def chain() -> PostProcessingChain:
    return PostProcessingChain.build(PostProcessingConfig(itn_backend="builtin"))


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({spoken for spoken, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("spoken", "written"), CASES, ids=[spoken for spoken, _ in CASES])
def test_en(chain: PostProcessingChain, spoken: str, written: str) -> None:
    assert chain.process(spoken, "en") == written


def test_formatting_is_idempotent(chain: PostProcessingChain) -> None:
    for _, written in CASES:
        assert chain.process(written, "en") == written


def test_portuguese_rules_do_not_apply_to_english(chain: PostProcessingChain) -> None:
    assert chain.process("twenty reais", "en") == "20 reais"
