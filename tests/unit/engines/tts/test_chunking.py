"""Text splitting for streamed synthesis: sentence and clause boundaries, a short first piece."""

from __future__ import annotations

import pytest

from theo.engines.tts.chunking import SplitPolicy, TextPiece, split_text


def _texts(text: str, policy: SplitPolicy | None = None) -> list[str]:
    return [p.text for p in split_text(text, policy)]


def test_sentences_become_pieces_with_a_pause_after_each_but_the_last() -> None:
    pieces = split_text("Hi. How are you? I am fine!")
    assert pieces == [
        TextPiece("Hi.", 0.25),
        TextPiece("How are you?", 0.25),
        TextPiece("I am fine!", 0.0),
    ]


def test_a_long_first_sentence_is_cut_at_its_first_clause_so_audio_starts_early() -> None:
    text = "Hello there, my name is Joe and I am a voice that lives on your own computer."
    pieces = split_text(text)
    assert pieces[0] == TextPiece("Hello there,", 0.1)
    assert pieces[1].text == "my name is Joe and I am a voice that lives on your own computer."
    assert " ".join(p.text for p in pieces) == text


def test_a_long_first_sentence_without_clauses_is_cut_at_a_word() -> None:
    text = (
        "The quick brown fox jumps over the lazy dog and then it runs far away "
        "into the deep dark forest without looking back"
    )
    first, rest = split_text(text)
    assert len(first.text) <= 60
    assert first.pause_s == 0.0  # mid-clause: no pause, the speech runs on
    assert f"{first.text} {rest.text}" == text


def test_a_first_sentence_stays_whole_when_a_cut_would_leave_a_scrap() -> None:
    text = "Mr. Smith met Dr. Jones at 3.5 p.m. on Elm St. near the U.S. border."
    policy = SplitPolicy(first_max_chars=60)
    assert _texts(f"{text} Then they left.", policy) == [text, "Then they left."]


def test_only_the_first_sentence_is_shortened() -> None:
    first = "The old lighthouse stood at the edge of the cliff for more than a hundred years."
    second = "Every night its keeper climbed the narrow stairs to light the great lamp."
    assert _texts(f"{first} {second}") == [
        "The old lighthouse stood at the edge of",
        "the cliff for more than a hundred years.",
        second,
    ]


def test_a_clause_a_little_past_the_limit_is_preferred_to_a_word_cut() -> None:
    text = "When the storm finally came late that night, the light kept shining until morning."
    assert _texts(text)[0] == "When the storm finally came late that night,"  # 44 characters


@pytest.mark.parametrize(
    "text",
    [
        "Mr. Smith arrived.",
        "J. R. Tolkien wrote it.",
        "It costs 3.50 dollars.",
        "Sr. Silva chegou às 10h.",
    ],
)
def test_abbreviations_initials_and_decimals_do_not_end_a_sentence(text: str) -> None:
    assert _texts(text) == [text]


def test_closing_quotes_stay_with_their_sentence() -> None:
    assert _texts('He said "stop." Then he left.') == ['He said "stop."', "Then he left."]


def test_lines_are_sentences_and_blank_lines_vanish() -> None:
    assert _texts("Line one\n\nLine two is here\n") == ["Line one", "Line two is here"]


def test_sentences_longer_than_the_limit_are_cut_at_clauses_then_words() -> None:
    policy = SplitPolicy(first_max_chars=1000, max_chars=40)
    text = "one two three four five six, seven eight nine ten eleven twelve thirteen fourteen."
    pieces = split_text(text, policy)
    assert all(len(p.text) <= 40 for p in pieces)
    assert " ".join(p.text for p in pieces) == text
    assert pieces[0] == TextPiece("one two three four five six,", 0.1)


def test_a_very_long_word_is_still_cut_to_the_limit() -> None:
    pieces = split_text("x" * 300, SplitPolicy(max_chars=100))
    assert all(len(p.text) <= 100 for p in pieces)
    assert "".join(p.text for p in pieces) == "x" * 300


@pytest.mark.parametrize("text", ["", "   ", "... !!!", "___", "\n\n", "¿?"])
def test_text_with_nothing_to_speak_gives_no_pieces(text: str) -> None:
    assert split_text(text) == []


def test_unspeakable_fragments_between_sentences_are_dropped() -> None:
    assert _texts("Olá! ... Tudo bem?") == ["Olá!", "Tudo bem?"]


def test_whitespace_inside_a_line_is_collapsed() -> None:
    assert _texts("Bom   dia,\tsenhor.") == ["Bom dia, senhor."]
