"""Unit tests for the one WER helper of the end-to-end tests and the benchmarks."""

import pytest

from tests.helpers.wer import normalize, wer


def test_identical_text_has_zero_wer() -> None:
    text = "he was not an ill disposed young man"
    assert wer(text, text) == 0.0


def test_one_substitution_in_five_words() -> None:
    assert wer("the quick brown fox jumps", "the quick brown cat jumps") == pytest.approx(0.2)


def test_punctuation_and_case_are_ignored() -> None:
    assert (
        wer("He was not an ill-disposed young man.", "he was NOT an ill disposed, young man") == 0.0
    )


def test_mister_forms_are_equal() -> None:
    assert wer("and mister john dashwood", "And Mr. John Dashwood") == 0.0
    assert normalize("Mr. Dashwood") == "mister dashwood"


def test_apostrophes_inside_words_are_kept() -> None:
    curly = "O'Brien\u2019s"
    assert normalize(f"'Don't,' she said — {curly} dog.") == "don't she said o'brien's dog"
    assert wer("don't go", "dont go") == pytest.approx(0.5)


def test_portuguese_accents_are_kept() -> None:
    assert normalize("Bom dia. Também preciso pagar a conta deste mês!") == (
        "bom dia também preciso pagar a conta deste mês"
    )


def test_deletions_and_insertions_count() -> None:
    assert wer("one two three four", "one two") == pytest.approx(0.5)
    assert wer("one two", "one two three four") == pytest.approx(1.0)


def test_empty_reference_is_rejected() -> None:
    with pytest.raises(ValueError, match="reference"):
        wer(" ... ", "anything")


def test_empty_reference_scores_when_allowed() -> None:
    assert wer(" ... ", "", allow_empty=True) == 0.0
    assert wer("", "anything at all", allow_empty=True) == 1.0
    assert wer("one two", "one", allow_empty=True) == pytest.approx(0.5)
