"""LocalAgreement-2 with scripted hypotheses: what gets committed, and that it never shrinks."""

from __future__ import annotations

from theo.engines.stt.local_agreement import LocalAgreement, normalize_word
from theo.types import Word


def hyp(text: str, start: float = 0.0, step: float = 0.5) -> list[Word]:
    """Words of ``text`` laid out every ``step`` seconds from ``start``."""
    return [
        Word(f" {w}", start + i * step, start + (i + 1) * step - 0.05, 0.9)
        for i, w in enumerate(text.split())
    ]


def texts(words: tuple[Word, ...] | list[Word]) -> list[str]:
    return [w.word.strip() for w in words]


def test_one_hypothesis_commits_nothing() -> None:
    agreement = LocalAgreement()
    assert agreement.update(hyp("and mister john")) == []
    assert agreement.committed == ()


def test_two_passes_commit_their_common_prefix() -> None:
    agreement = LocalAgreement()
    agreement.update(hyp("and mister john"))
    new = agreement.update(hyp("and mister jones dashwood"))
    assert texts(new) == ["and", "mister"]
    assert texts(agreement.committed) == ["and", "mister"]


def test_growth_continues_after_the_committed_words() -> None:
    agreement = LocalAgreement()
    agreement.update(hyp("he was"))
    agreement.update(hyp("he was not"))
    assert texts(agreement.update(hyp("he was not an"))) == ["not"]
    assert texts(agreement.update(hyp("he was not an ill"))) == ["an"]
    assert texts(agreement.committed) == ["he", "was", "not", "an"]


def test_committed_words_are_never_taken_back() -> None:
    agreement = LocalAgreement()
    agreement.update(hyp("the cat sat"))
    agreement.update(hyp("the cat sat down"))
    before = agreement.committed
    assert texts(before) == ["the", "cat", "sat"]
    # A later pass that disagrees about everything cannot remove anything.
    agreement.update(hyp("a bat"))
    agreement.update(hyp("a bat"))
    assert agreement.committed[: len(before)] == before


def test_case_and_punctuation_do_not_break_agreement_and_latest_spelling_wins() -> None:
    agreement = LocalAgreement()
    agreement.update(hyp("And Mr John."))
    new = agreement.update([Word(" and", 0, 0.4), Word(" Mr.", 0.5, 0.9), Word(" John,", 1, 1.4)])
    assert [w.word for w in new] == [" and", " Mr.", " John,"]


def test_a_shrinking_hypothesis_commits_nothing_and_keeps_what_was_committed() -> None:
    agreement = LocalAgreement()
    agreement.update(hyp("he was not an"))
    agreement.update(hyp("he was not an ill"))
    assert texts(agreement.committed) == ["he", "was", "not", "an"]
    assert agreement.update(hyp("he was")) == []
    assert texts(agreement.committed) == ["he", "was", "not", "an"]
    # Growth resumes once two passes agree again beyond the committed words.
    agreement.update(hyp("he was not an ill disposed"))
    assert texts(agreement.update(hyp("he was not an ill disposed young"))) == ["ill", "disposed"]


def test_a_rewritten_committed_region_is_aligned_by_time_without_duplicates() -> None:
    agreement = LocalAgreement()
    agreement.update(hyp("and mister john dashwood"))
    agreement.update(hyp("and mister john dashwood had"))
    assert texts(agreement.committed) == ["and", "mister", "john", "dashwood"]
    # The decoder now writes "Mr." for "mister": position no longer matches, times do.
    rewritten = ["and", "Mr.", "john", "dashwood", "had", "then"]
    assert texts(agreement.update(hyp(" ".join(rewritten)))) == ["had"]
    assert texts(agreement.update(hyp(" ".join([*rewritten, "leisure"])))) == ["then"]
    assert texts(agreement.committed) == ["and", "mister", "john", "dashwood", "had", "then"]


def test_after_a_trim_hypotheses_of_the_remaining_audio_continue_the_transcript() -> None:
    agreement = LocalAgreement()
    agreement.update(hyp("one two three four"))
    agreement.update(hyp("one two three four five"))
    assert texts(agreement.committed) == ["one", "two", "three", "four"]
    cut = agreement.cut_point(horizon_s=1.0)
    # "two" ends at 0.95 s and "three" starts at 1.0 s: cut in the gap.
    assert cut is not None and 0.95 < cut < 1.0
    agreement.trim(cut)
    assert texts(agreement.trimmed) == ["one", "two"]
    assert texts(agreement.live) == ["three", "four"]
    # New passes only cover the audio after the cut; "five" was already pending.
    assert texts(agreement.update(hyp("three four five six", start=1.0))) == ["five"]
    assert texts(agreement.update(hyp("three four five six seven", start=1.0))) == ["six"]
    assert texts(agreement.committed) == ["one", "two", "three", "four", "five", "six"]


def test_cut_point_needs_a_committed_word_old_enough() -> None:
    agreement = LocalAgreement()
    agreement.update(hyp("one two"))
    agreement.update(hyp("one two three"))
    assert agreement.cut_point(horizon_s=0.1) is None
    assert agreement.cut_point(horizon_s=10.0) == agreement.committed[-1].end


def test_reset_starts_a_new_segment() -> None:
    agreement = LocalAgreement()
    agreement.update(hyp("one two"))
    agreement.update(hyp("one two"))
    agreement.reset()
    assert agreement.committed == ()
    assert agreement.update(hyp("three")) == []


def test_normalize_word() -> None:
    assert normalize_word(" Mr.") == "mr"
    assert normalize_word(" don't,") == "don't"
    assert normalize_word(" 'quoted'") == "quoted"
    assert normalize_word(" Água!") == "água"


def test_a_decode_reading_the_committed_words_again_adds_nothing() -> None:
    agreement = LocalAgreement()
    agreement.update(hyp("he was not an old supposed young man"))
    agreement.update(hyp("he was not an old supposed young man"))
    reread = hyp("he was not an old supposed young man he was not an old-sposed young man")

    assert agreement.beyond_committed(reread) == []
    follow_on = hyp(
        "he was not an old supposed young man he was not an old-sposed young man at all"
    )
    assert texts(agreement.beyond_committed(follow_on)) == ["at", "all"]


def test_new_speech_after_the_committed_words_is_kept() -> None:
    agreement = LocalAgreement()
    agreement.update(hyp("he was not an ill disposed"))
    agreement.update(hyp("he was not an ill disposed"))
    final = hyp("he was not an ill disposed young man unless to be rather")

    assert texts(agreement.beyond_committed(final)) == [
        "young",
        "man",
        "unless",
        "to",
        "be",
        "rather",
    ]
    short_repeat = hyp("he was not an ill disposed no no")
    assert texts(agreement.beyond_committed(short_repeat)) == ["no", "no"]
