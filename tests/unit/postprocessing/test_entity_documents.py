"""Phone and card numbers in the entity stage alone (after ITN), English and pt-BR."""

from __future__ import annotations

import pytest

from theo.postprocessing.entities.cards import format_card
from theo.postprocessing.entities.en import format_entities_en
from theo.postprocessing.entities.en_documents import format_documents_en, format_us_phone
from theo.postprocessing.entities.pt_documents import format_documents


@pytest.mark.parametrize(
    ("digits", "written"),
    [
        ("1234567", "123-4567"),
        ("5551234567", "555-123-4567"),
        ("15551234567", "+1 555-123-4567"),
        ("25551234567", None),
        ("123456", None),
        ("555123456789", None),
    ],
)
def test_format_us_phone(digits: str, written: str | None) -> None:
    assert format_us_phone(digits) == written


def test_format_us_phone_keeps_a_parenthesised_area_code() -> None:
    assert format_us_phone("5551234567", parenthesised=True) == "(555) 123-4567"
    assert format_us_phone("15551234567", parenthesised=True) == "+1 (555) 123-4567"


def test_format_card() -> None:
    assert format_card("4111111111111111") == "4111 1111 1111 1111"
    assert format_card("378282246310005") == "3782 822463 10005"
    assert format_card("41111111111111") is None


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("My phone number is 555, 123, 4567.", "My phone number is 555-123-4567."),
        ("My phone number is 555. 123. 4567.", "My phone number is 555-123-4567."),
        ("phone: 555 - 123 - 4567", "phone: 555-123-4567"),
        ("It's my mobile, it's 555 123 4567", "It's my mobile, it's 555-123-4567"),
        ("my cell is one 555-123-4567", "my cell is +1 555-123-4567"),
        ("Call me at five five five one two three four", "Call me at 555-1234"),
        ("my cell is +1 (555) 123-4567", "my cell is +1 (555) 123-4567"),
        ("(call me at 555 123 4567) thanks", "(call me at 555-123-4567) thanks"),
        (
            "My number is 555 123 4567, oh and call after five.",
            "My number is 555-123-4567, oh and call after five.",
        ),
        ("Our card number: 4111, 1111, 1111, 1111.", "Our card number: 4111 1111 1111 1111."),
        ("debit card 3782 822463 10005", "debit card 3782 822463 10005"),
    ],
)
def test_phone_and_card_after_a_keyword(text: str, written: str) -> None:
    assert format_documents_en(text) == written


@pytest.mark.parametrize(
    "text",
    [
        "I have two kids.",
        "Call me tomorrow.",
        "Room 101.",
        "The number of people is twelve.",
        "The number of people is 12.",
        "The number is 1234567.",
        "Your order number is 5551234567.",
        "My number is 555 123 4567 89.",
        "5551234567",
        "555, 123, 4567",
        "my phone broke in 2019",
        "my phone is +44 20 7946 0958",
        "call me at 10:30",
        "card 1234",
        "card (555) 123-4567",
        "4111 1111 1111 1111",
    ],
)
def test_other_text_is_left_alone(text: str) -> None:
    assert format_documents_en(text) == text


def test_oh_is_a_zero_only_between_digits() -> None:
    assert format_documents_en("call me at 555, oh 12, 3456") == "call me at 555-012-3456"
    assert format_documents_en("call me at 555 123 4567 oh") == "call me at 555-123-4567 oh"


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("It costs 1200 dollars. And 50 cents.", "It costs $1,200.50."),
        ("It costs $1200. And $0.50.", "It costs $1,200.50."),
        ("It costs $1,200; and five cents.", "It costs $1,200.05."),
        ("Ten dollars. And five.", "$10. And five."),
        ("$10. And 5.", "$10. And 5."),
        ("I paid $1,234.50. And 50 cents.", "I paid $1,234.50. And $0.50."),
        ("2 million dollars. And 50 cents.", "$2 million. And $0.50."),
    ],
)
def test_cents_after_a_pause(text: str, written: str) -> None:
    assert format_entities_en(text) == written


@pytest.mark.parametrize(
    ("text", "written"),
    [
        (
            "o número do cartão é 4111, 1111, 1111, 1111",
            "o número do cartão é 4111 1111 1111 1111",
        ),
        ("Cartão de crédito: 3782, 822463, 10005.", "Cartão de crédito: 3782 822463 10005."),
        ("cartao de debito 4111111111111111", "cartao de debito 4111 1111 1111 1111"),
        ("o cartão final 1234", "o cartão final 1234"),
        ("4111 1111 1111 1111", "4111 1111 1111 1111"),
        ("o telefone é 11 98765-4321", "o telefone é (11) 98765-4321"),
    ],
)
def test_pt_card_after_a_keyword(text: str, written: str) -> None:
    assert format_documents(text) == written
