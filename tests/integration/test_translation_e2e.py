"""/v1/audio/translations really translates Portuguese speech to English."""

from __future__ import annotations

import subprocess

import openai
import pytest

from tests.conftest import BASE, TINY_EN
from tests.helpers.server import FIXTURES, RunningServer, theo_executable
from tests.helpers.wer import normalize

pytestmark = pytest.mark.e2e

PT_CLIP = FIXTURES / "pt_br_speech.wav"
ENGLISH_WORDS = {"good", "morning", "account", "balance", "thank", "help", "pay", "bill", "month"}
PORTUGUESE_WORDS = {"bom", "dia", "conta", "saldo", "obrigado", "ajuda", "pagar", "mês"}


def _words(text: str) -> set[str]:
    return set(normalize(text).split())


def test_translation_returns_english_not_portuguese(server: RunningServer) -> None:
    with server.client() as client, PT_CLIP.open("rb") as handle:
        response = client.post(
            "/v1/audio/translations",
            files={"file": ("pt.wav", handle, "audio/wav")},
            data={"model": BASE, "response_format": "verbose_json"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    words = _words(body["text"])
    assert len(words & ENGLISH_WORDS) >= 4, body["text"]
    assert not words & {"conta", "saldo", "obrigado", "ajuda"}, body["text"]
    assert body["task"] == "translate"


def test_transcription_of_the_same_clip_stays_portuguese(server: RunningServer) -> None:
    with server.client() as client, PT_CLIP.open("rb") as handle:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("pt.wav", handle)},
            data={"model": BASE, "language": "pt-BR"},
        )
    assert response.status_code == 200, response.text
    assert len(_words(response.json()["text"]) & PORTUGUESE_WORDS) >= 4, response.text


# The SDK marks `audio.translations` deprecated, but it is still OpenAI's contract.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_openai_sdk_translation(server: RunningServer) -> None:
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused")
    with PT_CLIP.open("rb") as handle:
        result = client.audio.translations.create(model=BASE, file=handle)
    assert len(_words(result.text) & ENGLISH_WORDS) >= 4, result.text


def test_theo_translate_command(server: RunningServer) -> None:
    result = subprocess.run(
        [theo_executable(), "translate", str(PT_CLIP), "--server", server.base_url],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert len(_words(result.stdout) & ENGLISH_WORDS) >= 4, result.stdout


def test_english_only_model_refuses_translation(server: RunningServer) -> None:
    with server.client() as client, PT_CLIP.open("rb") as handle:
        response = client.post(
            "/v1/audio/translations",
            files={"file": ("pt.wav", handle)},
            data={"model": TINY_EN},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "model"
    assert "cannot translate" in error["message"]
