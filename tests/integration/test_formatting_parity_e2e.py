"""Batch and realtime format the same speech alike, through a real `theo serve`.

The card clips (tests/fixtures/audio/README.md) are human speech from pocketsphinx's test
data. faster-whisper writes "seven" as "Seven" in the batch decode and "7" in the
realtime one; post-processing (one function for both paths) must give one written form.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests.conftest import BASE, TINY_EN, reference
from tests.helpers.realtime import pcm16_of, run_session, ws_url
from tests.helpers.server import FIXTURES, RunningServer, wait_for
from theo.postprocessing import HotWordCorrector
from theo.postprocessing.itn import nemo_available

pytestmark = pytest.mark.e2e

CARDS = ["en_cards_seven_of_clubs.wav", "en_cards_five_five.wav"]
_PUNCTUATION = re.compile(r"[.,;:!?]")
_LONE_SMALL_DIGIT = re.compile(r"(?<![\w.,$])\d(?!\w|[.,:]\d)")


def _post(server: RunningServer, path: str, clip: str, **fields: Any) -> str:
    with server.client() as client, (FIXTURES / clip).open("rb") as handle:
        response = client.post(path, files={"file": (clip, handle)}, data=fields)
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


def _words(text: str) -> list[str]:
    """The words of ``text`` without punctuation or case.

    Whisper punctuates the two decodes differently ("5 5" batch, "5, 5." or "5. 5."
    realtime, the same with itn=false), and a word after a full stop is capitalised, so
    casing follows that punctuation. Post-processing adds or removes no punctuation, so
    only the words, and how their numbers are written, are compared.
    """
    return _PUNCTUATION.sub(" ", text).lower().split()


@pytest.fixture(scope="module")
def settled_itn(server: RunningServer) -> str:
    """The ITN engine answering once start-up warm-up is over, so both paths share it."""
    expected = "nemo" if nemo_available() else "builtin"
    wait_for(lambda: server.health()["itn"].get("auto") == expected, 180, f"ITN {expected}")
    return expected


@pytest.mark.parametrize("clip", CARDS)
def test_batch_and_realtime_write_the_same_numbers(
    server: RunningServer, settled_itn: str, clip: str
) -> None:
    batch = _post(server, "/v1/audio/transcriptions", clip, model=TINY_EN)
    audio, rate = pcm16_of(clip)
    log = asyncio.run(run_session(ws_url(server.base_url, TINY_EN), audio, rate))
    realtime = " ".join(text.strip() for text in log.finals() if text.strip())

    assert _words(batch) == _words(realtime), (settled_itn, batch, realtime)
    for text in (batch, realtime):
        assert not _LONE_SMALL_DIGIT.search(text), text  # README: 0-9 stay words
        spoken = reference(clip.replace(".wav", ".txt")).split()
        assert _words(text)[: len(spoken)] == spoken, text


def test_translation_gets_no_currency_from_post_processing(server: RunningServer) -> None:
    clip = (
        "pt_br_money_cents.wav"  # "... mil duzentos e trinta e quatro reais e cinquenta centavos"
    )
    formatted = _post(server, "/v1/audio/translations", clip, model=BASE)
    raw = _post(server, "/v1/audio/translations", clip, model=BASE, itn="false")
    # faster-whisper base itself may render "reais" as a dollar sign ("US$1200"); the
    # post-processing must add no currency and turn no cents into dollars on top of that.
    assert formatted.count("$") == raw.count("$"), (formatted, raw)
    assert "$0.50" not in formatted
    if "$" not in raw:
        assert "$" not in formatted


def test_itn_false_with_hot_words_returns_the_engine_text(server: RunningServer) -> None:
    clip = "pt_br_money_cents.wav"
    raw = _post(
        server,
        "/v1/audio/transcriptions",
        clip,
        model=BASE,
        language="pt",
        itn="false",
        hot_words="REAIS",
    )
    assert "R$" not in raw and "1.234,50" not in raw, raw
    # The hot word was in the prompt; correcting the text would have changed "reais".
    assert HotWordCorrector(["REAIS"]).process(raw, "pt") != raw, raw
    assert "reais" in raw, raw
    formatted = _post(
        server, "/v1/audio/transcriptions", clip, model=BASE, language="pt", hot_words="REAIS"
    )
    assert "R$ 1.234,50" in formatted, formatted
