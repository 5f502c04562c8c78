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
    # A pause before the cents, written as a full stop: one amount when cents is said.
    ("It costs twelve hundred dollars. And fifty cents.", "It costs $1,200.50."),
    ("twelve hundred dollars, and fifty cents", "$1,200.50"),
    ("Ten dollars. And five.", "$10. And five."),
    # The engine's own digits before "hundred" (tiny.en writes "12 hundred dollars").
    ("It costs 12 hundred dollars and 50 cents.", "It costs $1,200.50."),
    ("$15 hundred", "$1,500"),
    ("150 hundred dollars", "150 hundred dollars"),
    ("two million dollars. And fifty cents.", "$2 million. And $0.50."),
]

# Dictated in groups, with the pauses written as commas or full stops; only after a keyword.
PHONES = [
    # A pause after the keyword, written as a full stop (tiny.en on a dictated number).
    ("My phone number. It's 555. 123. 4567.", "My phone number. It's 555-123-4567."),
    (
        "My phone number is five five five, one two three, four five six seven.",
        "My phone number is 555-123-4567.",
    ),
    (
        "My phone number is five five five. One two three. Four five six seven.",
        "My phone number is 555-123-4567.",
    ),
    ("Call me at five five five one two three four five six seven.", "Call me at 555-123-4567."),
    (
        "my cell is one five five five one two three four five six seven",
        "my cell is +1 555-123-4567",
    ),
    ("my number is one two three four five six seven", "my number is 123-4567"),
    ("Call me at five five five, one two three four.", "Call me at 555-1234."),
    ("call me at five five five, oh one two, three four five six", "call me at 555-012-3456"),
    ("Text me at five five five, one two three, four five six seven.", "Text me at 555-123-4567."),
    ("reach me at 555.123.4567", "reach me at 555-123-4567"),
    ("call 1-800-555-0199", "call +1 800-555-0199"),
    ("My number is (555) 123-4567.", "My number is (555) 123-4567."),
    ("(555) 123-4567", "(555) 123-4567"),
    ("My number is 555 123 4567. Two more things.", "My number is 555-123-4567. Two more things."),
]

CARDS = [
    (
        "my card number is four one one one, one one one one, one one one one, one one one one",
        "my card number is 4111 1111 1111 1111",
    ),
    (
        "credit card three seven eight two, eight two two four six three, one zero zero zero five",
        "credit card 3782 822463 10005",
    ),
    ("My credit card number is 4111111111111111.", "My credit card number is 4111 1111 1111 1111."),
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
    # Digit runs without a keyword, of another length, or someone else's number.
    ("I have two kids.", "I have two kids."),
    ("Call me tomorrow.", "Call me tomorrow."),
    ("Call 911.", "Call 911."),
    ("Room 101.", "Room 101."),
    ("The number of people is 12.", "The number of people is 12."),
    ("Your order number is 5551234567.", "Your order number is 5551234567."),
    ("My number is 555 123 4567 89.", "My number is 555 123 4567 89."),
    ("my phone is +44 20 7946 0958", "my phone is +44 20 7946 0958"),
    ("my number is 1,234,567", "my number is 1,234,567"),
    ("My card ends in one two three four.", "My card ends in 1234."),
]

CASES = MONEY + PHONES + CARDS + PERCENTAGES + NUMBERS + NEGATIVES

# Rows NeMo writes differently (it keeps "twelve" here), so only the built-in engine runs them.
BUILTIN_ONLY = [
    ("The number of people is twelve.", "The number of people is 12."),
]


@pytest.fixture(scope="module")
def chain() -> PostProcessingChain:
    return PostProcessingChain.build(PostProcessingConfig(itn_backend="builtin"))


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({spoken for spoken, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("spoken", "written"), CASES + BUILTIN_ONLY, ids=[spoken for spoken, _ in CASES + BUILTIN_ONLY]
)
def test_en(chain: PostProcessingChain, spoken: str, written: str) -> None:
    assert chain.process(spoken, "en") == written


def test_formatting_is_idempotent(chain: PostProcessingChain) -> None:
    for _, written in CASES + BUILTIN_ONLY:
        assert chain.process(written, "en") == written


def test_portuguese_rules_do_not_apply_to_english(chain: PostProcessingChain) -> None:
    assert chain.process("twenty reais", "en") == "20 reais"
