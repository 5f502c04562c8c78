"""The pt and en ITN/entity tables through NeMo's grammars (the ``theo[itn]`` extra).

Grammars are built once into ``.theo-test-cache/itn`` and loaded from there on later
runs. Where NeMo's own output style differs from the built-in rules, the expected text
is overridden below with the reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.unit.postprocessing.test_itn_entities_en import CASES as EN_CASES
from tests.unit.postprocessing.test_itn_entities_pt import CASES as PT_CASES
from theo.manifest import PostProcessingConfig
from theo.postprocessing import DeferredITNEngine, NemoITNEngine, PostProcessingChain
from theo.postprocessing.itn import select_itn_engine

# scripts/test.sh installs the theo[itn] extra, so these always run there.

CACHE_DIR = Path(__file__).resolve().parents[2] / ".theo-test-cache" / "itn"

NEMO_PT = {
    # NeMo writes durations with unit abbreviations; only "às ..." times become HH:MM.
    "trabalhei catorze horas e trinta minutos": "trabalhei 14 h e 30 min",
    # NeMo's time grammar reads the article "as" as the preposition "às".
    "as duas horas de espera": "às 2:00 de espera",
}


@pytest.fixture(scope="session")
def nemo_engine() -> NemoITNEngine:
    engine = NemoITNEngine(CACHE_DIR)
    engine.warm_up()
    return engine


@pytest.fixture(scope="session")
def chain(nemo_engine: NemoITNEngine) -> PostProcessingChain:
    return PostProcessingChain.build(PostProcessingConfig(), itn_engine=nemo_engine)


@pytest.mark.parametrize(("spoken", "written"), PT_CASES, ids=[s for s, _ in PT_CASES])
def test_pt_br_through_nemo(chain: PostProcessingChain, spoken: str, written: str) -> None:
    assert chain.process(spoken, "pt") == NEMO_PT.get(spoken, written)


@pytest.mark.parametrize(("spoken", "written"), EN_CASES, ids=[s for s, _ in EN_CASES])
def test_en_through_nemo(chain: PostProcessingChain, spoken: str, written: str) -> None:
    assert chain.process(spoken, "en") == written


def test_nemo_itself_writes_numbers(nemo_engine: NemoITNEngine) -> None:
    assert nemo_engine.normalize("Paguei dois mil e quinhentos reais, ok?", "pt") == (
        "Paguei R$ 2500, ok?"
    )
    assert nemo_engine.normalize("Vinte e cinco. Trinta!", "pt") == "25. 30!"
    assert nemo_engine.normalize("twenty-five people", "en") == "25 people"


def test_segment_whitespace_is_kept(nemo_engine: NemoITNEngine) -> None:
    # Whisper segments start with a space; joining them must not glue words together.
    assert nemo_engine.normalize(" Vinte reais.\n Trinta!  ", "pt") == " R$ 20.\n 30!  "
    assert nemo_engine.normalize("   ", "pt") == "   "


def test_grammars_are_cached_on_disk(nemo_engine: NemoITNEngine) -> None:
    far_files = sorted(p.name for p in CACHE_DIR.glob("*.far"))
    assert far_files == ["en_itn_lower_cased.far", "pt_itn_lower_cased.far"]
    before = {p: p.stat().st_mtime_ns for p in CACHE_DIR.glob("*.far")}
    again = NemoITNEngine(CACHE_DIR)
    again.warm_up()
    assert again.ready
    assert {p: p.stat().st_mtime_ns for p in CACHE_DIR.glob("*.far")} == before


def test_selected_engine_switches_to_nemo_after_warm_up(nemo_engine: NemoITNEngine) -> None:
    engine = select_itn_engine("auto", CACHE_DIR)
    assert isinstance(engine, DeferredITNEngine)
    assert engine.normalize("dois mil reais", "pt") == "2000 reais"
    engine.warm_up()
    assert engine.name == "nemo"
    assert engine.normalize("dois mil reais", "pt") == "R$ 2000"


def test_grammars_are_compiled_in_a_child_process(tmp_path: Path) -> None:
    # Compiling holds the GIL for seconds at a time: in the server's process it would
    # stall the event loop and every realtime session on it.
    engine = NemoITNEngine(tmp_path, languages=("en",))
    pynini_loaded = "pynini" in sys.modules
    engine._build("en")
    assert (tmp_path / "en_itn_lower_cased.far").stat().st_size > 1_000_000
    assert ("pynini" in sys.modules) == pynini_loaded
    engine.warm_up()  # then loaded from the cache it built
    assert engine.normalize("twenty-five people", "en") == "25 people"
