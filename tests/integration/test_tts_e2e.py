"""Text-to-speech through a real `theo serve` with real Piper and Kokoro workers.

Speech is checked by what it says: it is transcribed again by Theo's own STT endpoint
(the ``server`` fixture) and compared with the text that was spoken.
"""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import UTC, datetime

import httpx
import openai
import pytest

from tests.conftest import BASE, KOKORO, PIPER, TINY_EN
from tests.helpers.server import RunningServer, wait_for
from tests.helpers.wer import wer
from theo.audio.decode import decode_audio

pytestmark = pytest.mark.e2e

EN_PARAGRAPH = (
    "The old lighthouse stood at the edge of the cliff for more than a hundred years. "
    "Every night its keeper climbed the narrow stairs to light the great lamp. "
    "Ships passing in the dark relied on that steady beam to find their way home. "
    "When the storm finally came, the light kept shining until morning."
)
PT_PARAGRAPH = (
    "O atendimento ao cliente funciona de segunda a sexta-feira. "
    "Para falar com um atendente, basta ligar para a central e aguardar alguns minutos. "
    "Nossa equipe vai ajudar você a resolver o problema com rapidez."
)
SHORT_EN = "Good morning. The weather is lovely today."
FORMATS = ["mp3", "opus", "aac", "flac", "wav", "pcm"]
MODEL_RATES = {PIPER: 22_050, KOKORO: 24_000}


def _sdk(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0)


def _assert_plausible(data: bytes, fmt: str, model: str) -> None:
    """Decoded audio of ``SHORT_EN`` (7 words): its rate and a speaking-pace duration."""
    rate = MODEL_RATES[model]
    if fmt == "pcm":
        duration = len(data) / 2 / 24_000  # OpenAI's pcm, whatever the model's rate
    else:
        decoded = decode_audio(data)
        # Opus always decodes at 48 kHz; every other format keeps the model's rate.
        assert decoded.sample_rate == (48_000 if fmt == "opus" else rate)
        duration = decoded.duration_s
    assert 1.5 <= duration <= 6.0, duration


@pytest.mark.parametrize("fmt", FORMATS)
def test_openai_sdk_create_returns_every_format(tts_server: RunningServer, fmt: str) -> None:
    response = _sdk(tts_server).audio.speech.create(
        model=PIPER,
        voice="joe",
        input=SHORT_EN,
        response_format=fmt,
    )
    _assert_plausible(response.content, fmt, PIPER)


@pytest.mark.parametrize("fmt", FORMATS)
def test_openai_sdk_streaming_response_returns_every_format(
    tts_server: RunningServer, fmt: str
) -> None:
    with _sdk(tts_server).audio.speech.with_streaming_response.create(
        model=KOKORO,
        voice="jm_kumo",
        input=SHORT_EN,
        response_format=fmt,
    ) as response:
        assert response.headers["x-sample-rate"] == "24000"
        data = b"".join(response.iter_bytes())
    _assert_plausible(data, fmt, KOKORO)


def _speak(tts_server: RunningServer, **body: object) -> bytes:
    with tts_server.client() as client:
        response = client.post("/v1/audio/speech", json={"response_format": "wav", **body})
    assert response.status_code == 200, response.text
    return response.content


def _transcribe(server: RunningServer, audio: bytes, model: str, **fields: str) -> str:
    with server.client() as client:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("speech.wav", audio, "audio/wav")},
            data={"model": model, **fields},
        )
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


def test_piper_english_round_trip(tts_server: RunningServer, server: RunningServer) -> None:
    audio = _speak(tts_server, model=PIPER, input=EN_PARAGRAPH)
    text = _transcribe(server, audio, TINY_EN, itn="false")  # "a hundred", not "100"
    # Piper draws its noise inside the ONNX graph, so every synthesis differs: tiny.en
    # scored 0.02-0.11 over eight syntheses of this paragraph. Speech at a wrong rate or
    # garbled scores far above this bar.
    assert wer(EN_PARAGRAPH, text) <= 0.20, text


def test_kokoro_portuguese_round_trip(tts_server: RunningServer, server: RunningServer) -> None:
    audio = _speak(tts_server, model=KOKORO, voice="jm_kumo", language="pt-br", input=PT_PARAGRAPH)
    text = _transcribe(server, audio, BASE, language="pt", itn="false")
    assert wer(PT_PARAGRAPH, text) <= 0.25, text


def test_speed_changes_the_pace(tts_server: RunningServer) -> None:
    normal = decode_audio(_speak(tts_server, model=PIPER, input=SHORT_EN)).duration_s
    fast = decode_audio(_speak(tts_server, model=PIPER, input=SHORT_EN, speed=2.0)).duration_s
    assert fast < normal * 0.7, (fast, normal)


def _log_records(server: RunningServer, event: str, request_id: str) -> list[dict[str, object]]:
    records = []
    for line in server.log_text().splitlines():
        if f'"{event}"' in line and request_id in line:
            records.append(json.loads(line))
    return records


def _logged_at(record: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(record["timestamp"]))


def _story(sentences: int) -> str:
    return " ".join(
        f"This is sentence number {n} of a long story." for n in range(1, sentences + 1)
    )


def test_first_audio_reaches_the_client_before_the_last_sentence_is_synthesized(
    tts_server: RunningServer,
) -> None:
    """Event order on one clock: client's first audio < worker done with the last sentence."""
    request_id = f"stream-order-{time.monotonic_ns()}"
    received: list[tuple[datetime, int]] = []
    with (
        tts_server.client() as client,
        client.stream(
            "POST",
            "/v1/audio/speech",
            json={"model": KOKORO, "input": _story(8), "response_format": "pcm"},
            headers={"x-request-id": request_id},
        ) as response,
    ):
        assert response.status_code == 200
        for chunk in response.iter_raw():
            received.append((datetime.now(UTC), len(chunk)))
    audio_s = sum(size for _, size in received) / 2 / 24_000
    assert audio_s > 10.0
    done = wait_for(
        lambda: _log_records(tts_server, "synthesis_done", request_id), 10, "the worker's log"
    )[0]
    assert done["pieces_total"] == 8
    first_sent = _log_records(tts_server, "speech_first_audio", request_id)[0]
    # The first audio left the API, and reached this client, while the worker was still
    # synthesizing: seconds before it finished the last sentence.
    assert _logged_at(first_sent) < received[0][0] < _logged_at(done)


def test_a_client_that_disconnects_cancels_the_synthesis(tts_server: RunningServer) -> None:
    """The client reads the first audio and goes away: the rest of the text is never spoken."""
    request_id = f"disconnect-{time.monotonic_ns()}"
    pieces = 30
    with (
        tts_server.client() as client,
        client.stream(
            "POST",
            "/v1/audio/speech",
            json={"model": KOKORO, "input": _story(pieces), "response_format": "pcm"},
            headers={"x-request-id": request_id},
        ) as response,
    ):
        assert response.status_code == 200
        chunks = response.iter_raw()
        assert next(chunks)
    cancelled = wait_for(
        lambda: _log_records(tts_server, "synthesis_cancelled", request_id),
        30,
        "the worker to cancel the synthesis",
    )[0]
    assert cancelled["pieces_total"] == pieces
    assert 1 <= int(str(cancelled["pieces_done"])) < pieces
    assert not _log_records(tts_server, "synthesis_done", request_id)
    wait_for(lambda: _log_records(tts_server, "speech_cancelled", request_id), 10, "speech log")


def test_sse_streams_one_delta_per_piece_then_done(tts_server: RunningServer) -> None:
    request_id = f"sse-{time.monotonic_ns()}"
    with (
        tts_server.client() as client,
        client.stream(
            "POST",
            "/v1/audio/speech",
            json={
                "model": PIPER,
                "input": "One sentence here. Another one there. And a last one.",
                "stream_format": "sse",
                "response_format": "pcm",
            },
            headers={"x-request-id": request_id},
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [
            json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")
        ]
    types = [e["type"] for e in events]
    # A delta per sentence as it is synthesized (and the 24 kHz resampler's tail), then done.
    assert types[-1] == "speech.audio.done"
    assert types[:-1] == ["speech.audio.delta"] * (len(types) - 1) and len(types) - 1 >= 3
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert 2.0 <= len(pcm) / 2 / 24_000 <= 8.0


def test_voices_are_listed_per_model(tts_server: RunningServer) -> None:
    with tts_server.client() as client:
        everything = client.get("/v1/audio/voices").json()["data"]
        kokoro = client.get("/v1/audio/voices", params={"model": KOKORO}).json()["data"]
        unknown = client.get("/v1/audio/voices", params={"model": "nope"})
    by_model = {entry["model"]: entry for entry in everything}
    assert set(by_model) == {PIPER, KOKORO}
    assert by_model[PIPER]["voices"] == [
        {"id": "joe", "name": "Joe", "language": "en-us", "gender": "male"}
    ]
    assert by_model[PIPER]["sample_rate"] == 22_050
    assert kokoro == [by_model[KOKORO]]
    voices = {v["id"]: v for v in kokoro[0]["voices"]}
    assert voices["jm_kumo"] == {
        "id": "jm_kumo",
        "name": "Kumo",
        "language": "ja",
        "gender": "male",
    }
    assert voices["jf_alpha"]["gender"] == "female"
    assert kokoro[0]["default_voice"] == "jm_kumo"
    assert "pt-br" in kokoro[0]["languages"]
    assert kokoro[0]["speed"] == {"min": 0.5, "max": 2.0}
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"


_BAD_REQUESTS = [
    ({"input": ""}, 400, "input", "at least 1 character"),
    ({"input": " \n ... "}, 400, "input", "nothing to speak"),
    ({"input": "a" * 4097}, 400, "input", "at most 4096 characters"),
    ({"model": "nope"}, 404, None, "Model 'nope' is not installed"),
    ({"voice": "alloy"}, 400, "voice", "Unknown voice 'alloy'"),
    ({"response_format": "ogg"}, 400, "response_format", "'mp3', 'opus', 'aac', 'flac'"),
    ({"speed": 4.5}, 400, "speed", "less than or equal to 4"),
    ({"speed": 0.1}, 400, "speed", "greater than or equal to 0.25"),
    ({"model": KOKORO, "voice": "jm_kumo", "speed": 3.0}, 400, "speed", "from 0.5 to 2"),
    ({"model": KOKORO, "voice": "jm_kumo", "language": "de"}, 400, "language", "'de'"),
    ({"stream_format": "chunks"}, 400, "stream_format", "'audio' or 'sse'"),
    ({"instructions": "whisper"}, 400, "instructions", "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("change", "status", "param", "message"), _BAD_REQUESTS)
def test_bad_input_gets_a_clear_error(
    tts_server: RunningServer,
    change: dict[str, object],
    status: int,
    param: str | None,
    message: str,
) -> None:
    body = {"model": PIPER, "input": "Hello.", "voice": "joe", **change}
    with tts_server.client() as client:
        response = client.post("/v1/audio/speech", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert message in error["message"]


def test_malformed_bodies_and_wrong_model_types_are_rejected(
    tts_server: RunningServer, server: RunningServer
) -> None:
    with tts_server.client() as client:
        not_json = client.post(
            "/v1/audio/speech", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == "invalid_json"
    with server.client() as client:
        stt_model = client.post("/v1/audio/speech", json={"model": TINY_EN, "input": "Hello."})
        stt_voices = client.get("/v1/audio/voices", params={"model": TINY_EN})
    assert stt_model.status_code == 400
    assert "not text-to-speech" in stt_model.json()["error"]["message"]
    assert stt_voices.status_code == 400


def test_workers_survive_bad_input_and_metrics_record_speech(tts_server: RunningServer) -> None:
    pids = {model: tts_server.worker(model)["pid"] for model in (PIPER, KOKORO)}
    for change, *_ in _BAD_REQUESTS:
        with tts_server.client() as client:
            client.post("/v1/audio/speech", json={"model": PIPER, "input": "Hi.", **change})
    audio = _speak(tts_server, model=PIPER, input="Still here.")
    assert decode_audio(audio).duration_s > 0.3
    for model, pid in pids.items():
        worker = tts_server.worker(model)
        assert (worker["pid"], worker["state"], worker["restarts"]) == (pid, "ready", 0)
    metrics = httpx.get(f"{tts_server.base_url}/metrics", timeout=5).text

    def value(pattern: str) -> float:
        match = re.search(pattern + r" ([0-9.e+]+)", metrics)
        assert match, pattern
        return float(match.group(1))

    assert value(rf'theo_tts_ttfb_seconds_count\{{model="{PIPER}"\}}') >= 1
    assert value(rf'theo_tts_synthesis_duration_seconds_count\{{model="{PIPER}"\}}') >= 1
    ok = rf'theo_tts_requests_total\{{model="{PIPER}",outcome="ok",response_format="wav"\}}'
    invalid = (
        rf'theo_tts_requests_total\{{model="{PIPER}",outcome="invalid",response_format="mp3"\}}'
    )

    assert value(ok) >= 1
    assert value(invalid) >= 1
