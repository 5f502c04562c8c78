"""The post-processing chain: stage order, per-request ITN switch, hot-word merge, engines."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from theo.manifest import PostProcessingConfig
from theo.postprocessing import (
    BuiltinITNEngine,
    DeferredITNEngine,
    EntityFormatter,
    HotWordCorrector,
    ITNStage,
    ITNUnavailableError,
    NemoITNEngine,
    PostProcessingChain,
    PostProcessingOptions,
    merge_hot_words,
    postprocess_text,
    select_itn_engine,
)
from theo.postprocessing.itn import ITNNotReadyError
from theo.postprocessing.itn.small_numbers import spell_small_numbers
from theo.server.batch import postprocess_result
from theo.session.config import SessionConfig
from theo.session.context import SessionContext
from theo.session.transcripts import TranscriptEvents
from theo.types import BatchResult, Segment, StreamTranscript, Task, TranscriptKind


class RecordingStage:
    """Appends its name to the text, so the output shows the order stages ran in."""

    def __init__(self, name: str) -> None:
        self.name = name

    def process(self, text: str, language: str | None) -> str:
        return f"{text}>{self.name}:{language}"


class FakeEngine:
    """An ITN engine that tags text, with a controllable warm-up."""

    def __init__(self, name: str, ready: bool = True, fail: bool = False) -> None:
        self.name = name
        self.ready = ready
        self.fail = fail
        self.warm_ups = 0

    def supports(self, language: str) -> bool:
        return language == "pt"

    def normalize(self, text: str, language: str) -> str:
        if self.fail:
            raise RuntimeError("grammar failure")
        return f"{self.name}({text})"

    def warm_up(self) -> None:
        self.warm_ups += 1
        if self.fail:
            raise RuntimeError("cannot build")
        self.ready = True


def stage_names(chain: PostProcessingChain) -> list[str]:
    return [stage.name for stage in chain.stages]


def test_stages_run_in_order_with_the_language() -> None:
    chain = PostProcessingChain([RecordingStage("a"), RecordingStage("b"), RecordingStage("c")])
    assert chain.process("x", "pt") == "x>a:pt>b:pt>c:pt"


def test_a_chain_is_itself_a_stage() -> None:
    inner = PostProcessingChain([RecordingStage("a"), RecordingStage("b")])
    outer = PostProcessingChain([inner, RecordingStage("c")])
    assert outer.process("x", None) == "x>a:None>b:None>c:None"


def test_build_orders_itn_entities_hot_words() -> None:
    chain = PostProcessingChain.build(PostProcessingConfig(hot_words=["TED"]))
    assert stage_names(chain) == ["itn", "entities", "hot_words"]
    assert isinstance(chain.stages[0], ITNStage)
    assert isinstance(chain.stages[1], EntityFormatter)
    assert chain.process("fiz uma ted de dois mil reais", "pt") == "fiz uma TED de R$ 2.000,00"


def test_segment_whitespace_is_kept() -> None:
    chain = PostProcessingChain.build(PostProcessingConfig(hot_words=["PIX"]))
    assert (
        chain.process(" Paguei dois mil reais no pix.\n", "pt") == " Paguei R$ 2.000,00 no PIX.\n"
    )


def test_hot_words_see_the_formatted_text() -> None:
    # ITN first turns "vinte" into "20"; a hot word spelled "Vinte" can no longer match.
    chain = PostProcessingChain.build(PostProcessingConfig(hot_words=["Vinte"]))
    assert chain.process("vinte por cento", "pt") == "20%"


def test_without_hot_words_there_is_no_hot_word_stage() -> None:
    assert stage_names(PostProcessingChain.build(PostProcessingConfig())) == ["itn", "entities"]


def test_itn_false_returns_text_untouched() -> None:
    chain = PostProcessingChain.build(PostProcessingConfig(), itn=False)
    assert chain.stages == ()
    text = "dois mil e quinhentos reais, CPF um dois três"
    assert chain.process(text, "pt") == text


def test_itn_false_returns_raw_text_even_with_hot_words() -> None:
    # The README: itn=false returns the engine's raw text; hot words only bias the prompt.
    config = PostProcessingConfig(hot_words=["TED"])
    chain = PostProcessingChain.build(config, itn=False, hot_words=["PIX"])
    assert stage_names(chain) == []
    assert chain.process("dois mil reais no pics e uma ted", "pt") == (
        "dois mil reais no pics e uma ted"
    )
    options = PostProcessingOptions(config, itn=False, hot_words=("PIX",))
    assert postprocess_text("7 dollars no pics", "en", options) == "7 dollars no pics"


def test_request_itn_overrides_the_config() -> None:
    off = PostProcessingConfig(itn=False)
    assert stage_names(PostProcessingChain.build(off)) == []
    assert stage_names(PostProcessingChain.build(off, itn=True)) == ["itn", "entities"]
    assert stage_names(PostProcessingChain.build(PostProcessingConfig(), itn=None)) == [
        "itn",
        "entities",
    ]


def test_entities_can_be_turned_off() -> None:
    chain = PostProcessingChain.build(PostProcessingConfig(entities=False))
    assert stage_names(chain) == ["itn"]
    assert chain.process("dois mil e quinhentos reais", "pt") == "2500 reais"


def test_request_hot_words_merge_with_config_hot_words() -> None:
    config = PostProcessingConfig(hot_words=["PIX", "Itaú"], hot_word_threshold=90)
    chain = PostProcessingChain.build(config, hot_words=["pix", "itau", "Nubank", " "])
    corrector = chain.stages[-1]
    assert isinstance(corrector, HotWordCorrector)
    assert [h.text for h in corrector.hot_words] == ["PIX", "Itaú", "Nubank"]
    assert corrector.threshold == 90
    assert chain.process("pix no nu bank", "pt") == "PIX no Nubank"


def test_merge_hot_words_dedups_ignoring_case_accents_and_spacing() -> None:
    assert merge_hot_words(["Banco  Itaú", "PIX"], ["banco itau", "pix", "", "TED"]) == [
        "Banco Itaú",
        "PIX",
        "TED",
    ]


def test_the_given_itn_engine_is_used() -> None:
    chain = PostProcessingChain.build(
        PostProcessingConfig(entities=False), itn_engine=FakeEngine("fake")
    )
    assert chain.process("vinte", "pt-BR") == "fake(vinte)"
    assert chain.process("twenty", "en") == "twenty"
    assert chain.process("vinte", None) == "vinte"


def test_deferred_engine_uses_the_fallback_until_warm() -> None:
    primary = FakeEngine("primary", ready=False)
    engine = DeferredITNEngine(primary, FakeEngine("fallback"))
    assert engine.ready
    assert not engine.upgraded
    assert engine.name == "fallback"
    assert engine.normalize("x", "pt") == "fallback(x)"
    engine.warm_up()
    engine.warm_up()
    assert engine.upgraded
    assert engine.name == "primary"
    assert engine.normalize("x", "pt") == "primary(x)"
    assert primary.warm_ups == 2


def test_deferred_engine_survives_a_failed_warm_up_and_failed_calls() -> None:
    primary = FakeEngine("primary", ready=False, fail=True)
    engine = DeferredITNEngine(primary, FakeEngine("fallback"))
    engine.warm_up()
    assert engine.normalize("x", "pt") == "fallback(x)"
    primary.ready = True
    assert engine.normalize("x", "pt") == "fallback(x)"


def test_select_builtin_engine() -> None:
    engine = select_itn_engine("builtin", Path("unused"))
    assert isinstance(engine, BuiltinITNEngine)
    assert engine.ready
    assert engine.normalize("vinte e cinco", "pt") == "25"


def test_select_rejects_unknown_backends() -> None:
    with pytest.raises(ValueError, match="unknown ITN backend"):
        select_itn_engine("kaldi", Path("unused"))


@pytest.mark.parametrize("backend", ["auto", "nemo"])
def test_select_defers_to_nemo_when_installed(backend: str, tmp_path: Path) -> None:
    engine = select_itn_engine(backend, tmp_path)
    assert isinstance(engine, DeferredITNEngine)
    assert engine.name == "builtin"
    assert list(tmp_path.iterdir()) == []  # nothing is built before warm_up()


def test_select_without_nemo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The test suite installs the extra; pretend it is missing, as on a plain install.
    monkeypatch.setattr("theo.postprocessing.itn.select.nemo_available", lambda: False)
    assert isinstance(select_itn_engine("auto", tmp_path), BuiltinITNEngine)
    with pytest.raises(ITNUnavailableError, match=r"theo-openvoice\[itn\]"):
        select_itn_engine("nemo", tmp_path)


def test_nemo_engine_refuses_to_build_on_a_request_path(tmp_path: Path) -> None:
    engine = NemoITNEngine(tmp_path)
    assert not engine.ready
    assert engine.supports("pt")
    assert not engine.supports("de")
    with pytest.raises(ITNNotReadyError):
        engine.normalize("vinte", "pt")


# --- One function for batch and realtime -------------------------------------------------


def _batch_text(text: str, language: str, options: PostProcessingOptions) -> str:
    """What the batch route returns for an engine result of one segment."""
    segment = Segment(id=0, start=0.0, end=1.0, text=" " + text)
    result = BatchResult(text=text, language=language, duration=1.0, segments=(segment,))
    return postprocess_result(result, options).text


def _realtime_text(
    text: str, language: str, config: PostProcessingConfig, session: SessionConfig
) -> str:
    """What a realtime session sends as the final of one segment."""
    context = SimpleNamespace(manifest=SimpleNamespace(postprocessing=config), itn_engine=None)
    events = TranscriptEvents(cast(SessionContext, context), cast(Any, None), lambda: session)
    final = StreamTranscript(kind=TranscriptKind.FINAL, segment_id=0, text=text, language=language)
    return events._postprocess(final)


SAME_WORDS = [
    # Whisper writes the cards as words in one decode and digits in another.
    ("Seven of clubs", "en", "Seven of clubs"),
    ("7 of clubs", "en", "Seven of clubs"),
    ("7 of clubs.", "en", "Seven of clubs."),
    ("5 5", "en", "Five five"),
    ("Five five", "en", "Five five"),
    ("5, 5.", "en", "Five, five."),
    ("A 10 of clubs.", "en", "A ten of clubs."),
    ("It costs 5 dollars and 20 percent more", "en", "It costs $5 and 20% more"),
    ("Paguei dois mil reais no pics", "pt", "Paguei R$ 2.000,00 no PIX"),
]


@pytest.mark.parametrize(("raw", "language", "expected"), SAME_WORDS)
def test_batch_and_realtime_callers_give_the_same_text(
    raw: str, language: str, expected: str
) -> None:
    config = PostProcessingConfig(itn_backend="builtin")
    options = PostProcessingOptions(config, hot_words=("PIX",))
    session = SessionConfig(hot_words=["PIX"])
    assert _batch_text(raw, language, options) == expected
    assert _realtime_text(raw, language, config, session) == expected
    assert postprocess_text(raw, language, options) == expected


def test_itn_false_is_raw_on_both_paths() -> None:
    config = PostProcessingConfig()
    raw = "Quero fazer um piques de R$100"
    options = PostProcessingOptions(config, itn=False, hot_words=("PIX",))
    session = SessionConfig(hot_words=["PIX"], enable_itn=False)
    assert _batch_text(raw, "pt", options) == raw
    assert _realtime_text(raw, "pt", config, session) == raw


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("1, 2, 3, 4", "1, 2, 3, 4"),  # dictated digits stay digits
        ("$5 or 5%", "$5 or 5%"),
        ("5.5 and 5,000 at 5:30", "5.5 and 5,000 at 5:30"),
        ("2 million", "2 million"),
        ("at 5 p.m.", "at 5 p.m."),
        ("the 5th", "the 5th"),
        ("11 cats", "11 cats"),
        ("said 3. 4 more", "said three. Four more"),
    ],
)
def test_lone_small_digits_are_spelled_in_english(written: str, expected: str) -> None:
    assert spell_small_numbers(written, "en") == expected


def test_portuguese_small_digits_are_left_alone() -> None:
    # "1"/"2" are "um"/"uma", "dois"/"duas" by the noun's gender: no safe spelling.
    assert spell_small_numbers("2 pessoas e 1 casa", "pt") == "2 pessoas e 1 casa"


def test_translation_gets_no_invented_currency() -> None:
    options = PostProcessingOptions(PostProcessingConfig(), task=Task.TRANSLATE)
    # The text of a translation is English whatever the speaker's language was.
    for language in ("pt", "en", None):
        assert postprocess_text("The total was 1234 reais and 50 cents.", language, options) == (
            "The total was 1234 reais and 50 cents."
        )
        assert postprocess_text(
            "one thousand two hundred thirty four reais and fifty cents", language, options
        ) == ("1234 reais and 50 cents")
    assert postprocess_text("twenty percent more", "pt", options) == "20% more"


def test_translation_uses_the_builtin_rules_even_when_nemo_is_ready() -> None:
    nemo_like = FakeEngine("nemo")
    chain = PostProcessingChain.build(
        PostProcessingConfig(), itn_engine=nemo_like, task=Task.TRANSLATE
    )
    itn = chain.stages[0]
    assert isinstance(itn, ITNStage)
    assert isinstance(itn.engine, BuiltinITNEngine)


def test_english_cents_after_another_currency_are_not_dollars() -> None:
    chain = PostProcessingChain.build(PostProcessingConfig(itn_backend="builtin"))
    assert chain.process("1234 reais and 50 cents", "en") == "1234 reais and 50 cents"
    assert chain.process("fifty cents", "en") == "$0.50"


def test_a_chain_settles_the_deferred_engine_once() -> None:
    # Grammars finishing halfway through a transcript must not split its segments
    # between two engines.
    primary = FakeEngine("primary", ready=False)
    engine = DeferredITNEngine(primary, FakeEngine("fallback"))
    config = PostProcessingConfig(entities=False)
    before = PostProcessingChain.build(config, itn_engine=engine)
    engine.warm_up()
    after = PostProcessingChain.build(config, itn_engine=engine)
    assert before.process("x", "pt") == "fallback(x)"
    assert after.process("x", "pt") == "primary(x)"
