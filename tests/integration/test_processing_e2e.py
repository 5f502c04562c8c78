"""Pre- and post-processing through a real `theo serve` with faster-whisper-base and real speech.

The pt-BR clips are natural speech made with Kokoro (see tests/fixtures/audio/README.md).
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
import srt

from tests.conftest import BASE, TINY_EN, reference
from tests.helpers.server import FIXTURES, RunningServer, theo_executable
from tests.helpers.wer import wer

pytestmark = pytest.mark.e2e


def _transcribe(server: RunningServer, clip: str, **fields: Any) -> str:
    """The transcript text, or the whole body for non-json formats."""
    data = {"model": BASE, "language": "pt", **fields}
    with server.client() as client, (FIXTURES / clip).open("rb") as handle:
        response = client.post(
            "/v1/audio/transcriptions", files={"file": (clip, handle)}, data=data
        )
    assert response.status_code == 200, response.text
    if fields.get("response_format", "json") == "json":
        return str(response.json()["text"])
    return response.text


def test_spoken_money_amount_is_formatted_in_reais(server: RunningServer) -> None:
    assert "R$ 2.500,00" in _transcribe(server, "pt_br_money.wav")


def test_spoken_amount_with_cents_is_formatted(server: RunningServer) -> None:
    text = _transcribe(server, "pt_br_money_cents.wav")
    assert "R$ 1.234,50" in text
    assert "centavos" not in text


def test_spoken_cpf_is_formatted(server: RunningServer) -> None:
    text = _transcribe(server, "pt_br_cpf.wav")
    assert "123.456.789-00" in text
    assert "CPF" in text


def test_itn_false_returns_the_engine_text(server: RunningServer) -> None:
    raw = _transcribe(server, "pt_br_money_cents.wav", itn="false")
    # Whisper writes the thousands either way ("1234" or "1.234") depending on the
    # CPU's float rounding; what matters is that the words stay the engine's.
    assert re.search(r"1\.?234 reais e 50 centavos", raw), raw
    assert "R$" not in raw
    raw_cpf = _transcribe(server, "pt_br_cpf.wav", itn="false")
    assert "123.456.789-00" not in raw_cpf
    assert "1, 2, 3" in raw_cpf


def test_hot_word_pix_corrects_the_misrecognition(server: RunningServer) -> None:
    without = _transcribe(server, "pt_br_pix.wav")
    assert "PIX" not in without.upper().split()  # Whisper alone hears "piques"
    corrected = _transcribe(server, "pt_br_pix.wav", hot_words="PIX,TED")
    assert "um PIX de R$ 100,00" in corrected


def test_verbose_json_segments_and_subtitles_are_formatted(server: RunningServer) -> None:
    body = json.loads(_transcribe(server, "pt_br_money_cents.wav", response_format="verbose_json"))
    assert "R$ 1.234,50" in body["text"]
    assert " ".join(s["text"].strip() for s in body["segments"]) == body["text"]
    subtitles = list(srt.parse(_transcribe(server, "pt_br_money.wav", response_format="srt")))
    assert any("R$ 2.500,00" in s.content for s in subtitles)


def test_english_text_keeps_its_words(server: RunningServer) -> None:
    # ITN on English speech must not damage ordinary words ("a", "one", ...).
    with server.client() as client, (FIXTURES / "en_librivox.wav").open("rb") as handle:
        response = client.post(
            "/v1/audio/transcriptions", files={"file": handle}, data={"model": TINY_EN}
        )
    assert wer(reference("en_librivox.txt"), response.json()["text"]) <= 0.10


@pytest.mark.parametrize("denoise", ["on", "off"])
def test_noisy_telephone_clip_with_and_without_denoise(
    server: RunningServer, denoise: str, record_property: Any
) -> None:
    with server.client() as client, (FIXTURES / "en_librivox_8k_noisy.wav").open("rb") as handle:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": handle},
            data={"model": TINY_EN, "denoise": denoise},
        )
    assert response.status_code == 200, response.text
    score = wer(reference("en_librivox.txt"), response.json()["text"])
    record_property("wer", score)
    print(f"noisy 8 kHz clip, denoise={denoise}: WER {score:.3f}")
    assert score <= 0.40


def test_cli_no_itn_and_hot_words(server: RunningServer) -> None:
    def run(*extra: str) -> str:
        result = subprocess.run(
            [
                theo_executable(),
                "transcribe",
                str(FIXTURES / "pt_br_pix.wav"),
                "-m",
                BASE,
                "-l",
                "pt",
                "--server",
                server.base_url,
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "PIX de R$ 100,00" in run("--hot-words", "PIX")
    assert "R$ 100,00" not in run("--no-itn")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("itn", "maybe", "true or false"),
        ("denoise", "loud", "auto, true or false"),
        ("gain_normalize", "2", "true or false"),
        ("hot_words", ",".join(f"w{i}" for i in range(101)), "at most 100"),
    ],
)
def test_invalid_processing_fields(
    server: RunningServer, field: str, value: str, fragment: str
) -> None:
    with server.client() as client, (FIXTURES / "en_short.wav").open("rb") as handle:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": handle},
            data={"model": TINY_EN, field: value},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == field
    assert fragment in error["message"]


def test_processing_metrics_are_served(server: RunningServer) -> None:
    _transcribe(server, "pt_br_money.wav")
    with server.client() as client:
        text = client.get("/metrics").text
    assert 'theo_preprocessing_duration_seconds_count{mode="batch"}' in text
    assert 'theo_postprocessing_duration_seconds_count{mode="batch"}' in text
