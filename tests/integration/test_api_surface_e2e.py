"""/health, /metrics, /v1/models and response formats served by a real server."""

from __future__ import annotations

import itertools
import json
import subprocess

import pytest
import srt
import webvtt

from tests.conftest import BASE, TINY_EN, reference
from tests.helpers.server import FIXTURES, RunningServer, free_port, theo_executable
from tests.helpers.wer import wer

pytestmark = pytest.mark.e2e

CLIP = FIXTURES / "en_librivox.wav"


def _transcribe(server: RunningServer, response_format: str, **extra: str) -> str:
    with server.client() as client, CLIP.open("rb") as handle:
        response = client.post(
            "/v1/audio/transcriptions",
            files={"file": ("clip.wav", handle)},
            data={"model": TINY_EN, "response_format": response_format, **extra},
        )
    assert response.status_code == 200, response.text
    return response.text


def test_health_reports_every_worker(server: RunningServer) -> None:
    body = server.health()
    assert body["status"] == "ok"
    workers = {w["model"]: w for w in body["workers"]}
    assert set(workers) == {TINY_EN, BASE}
    assert body["itn"]["auto"] in ("builtin", "nemo")
    for worker in workers.values():
        assert worker["state"] == "ready"
        assert worker["pid"] > 0 and worker["port"] > 0
        assert worker["device"] == "cpu" and worker["compute_type"] == "int8"


def test_models_list_is_openai_shaped(server: RunningServer) -> None:
    with server.client() as client:
        body = client.get("/v1/models").json()
        one = client.get(f"/v1/models/{BASE}").json()
        missing = client.get("/v1/models/nope")
    assert body["object"] == "list"
    by_id = {m["id"]: m for m in body["data"]}
    assert set(by_id) == {TINY_EN, BASE}
    assert by_id[TINY_EN]["object"] == "model"
    assert by_id[TINY_EN]["type"] == "stt"
    assert by_id[TINY_EN]["engine"] == "faster-whisper"
    assert by_id[TINY_EN]["status"] == "ready"
    assert by_id[TINY_EN]["capabilities"]["translation"] is False
    assert by_id[BASE]["capabilities"]["translation"] is True
    assert one["id"] == BASE
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"


def test_json_and_text_formats(server: RunningServer) -> None:
    as_json = json.loads(_transcribe(server, "json"))
    as_text = _transcribe(server, "text")
    assert set(as_json) == {"text"}
    assert not as_text.lstrip().startswith("{")
    assert as_text.strip() == as_json["text"]
    assert wer(reference("en_librivox.txt"), as_text) <= 0.10


def test_srt_parses_with_monotonic_timestamps(server: RunningServer) -> None:
    subtitles = list(srt.parse(_transcribe(server, "srt")))
    assert len(subtitles) >= 3
    assert [s.index for s in subtitles] == list(range(1, len(subtitles) + 1))
    for previous, current in itertools.pairwise(subtitles):
        assert previous.start <= current.start
        assert previous.end <= current.end
    assert all(s.start < s.end for s in subtitles)
    assert subtitles[-1].end.total_seconds() <= 27.5
    text = " ".join(s.content for s in subtitles)
    assert wer(reference("en_librivox.txt"), text) <= 0.10


def test_vtt_parses_with_monotonic_timestamps(server: RunningServer) -> None:
    body = _transcribe(server, "vtt")
    assert body.startswith("WEBVTT\n")
    captions = webvtt.from_string(body)
    starts = [c.start_in_seconds for c in captions]
    assert len(captions) >= 3
    assert starts == sorted(starts)
    assert all(c.start_in_seconds < c.end_in_seconds for c in captions)
    text = " ".join(c.text for c in captions)
    assert wer(reference("en_librivox.txt"), text) <= 0.10


def test_verbose_json_segments_without_words_unless_asked(server: RunningServer) -> None:
    body = json.loads(_transcribe(server, "verbose_json"))
    assert body["task"] == "transcribe"
    assert body["language"] == "en"
    assert body["duration"] == pytest.approx(27.13, abs=0.2)
    assert "words" not in body
    segments = body["segments"]
    assert [s["id"] for s in segments] == list(range(len(segments)))
    for segment in segments:
        assert segment["start"] < segment["end"]
        assert segment["tokens"] and -5 < segment["avg_logprob"] <= 0
    assert "".join(s["text"] for s in segments).strip() == body["text"]


def test_metrics_are_served(server: RunningServer) -> None:
    _transcribe(server, "json")
    with server.client() as client:
        client.post("/v1/audio/transcriptions", data={"model": TINY_EN})
        metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert (
        'theo_requests_total{endpoint="/v1/audio/transcriptions",method="POST",status="200"}'
        in text
    )
    assert 'theo_errors_total{code="400",endpoint="/v1/audio/transcriptions"}' in text
    assert 'theo_request_duration_seconds_bucket{endpoint="/v1/audio/transcriptions"' in text
    ready = (
        f'theo_worker_state{{model="{TINY_EN}",theo_worker_state="ready",'
        f'worker_id="stt-{TINY_EN}"}} 1.0'
    )
    assert ready in text


def test_cli_clients_fail_clearly_without_a_server() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (
        ["transcribe", str(CLIP), "--server", url],
        ["translate", str(CLIP), "--server", url],
        ["ps", "--server", url],
    ):
        result = subprocess.run(
            [theo_executable(), *args], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 1
        assert "cannot reach the Theo server" in result.stderr
        assert "Traceback" not in result.stderr
