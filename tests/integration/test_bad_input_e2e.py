"""Every bad input gets a clear OpenAI-shaped 4xx, and the server stays healthy afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import TINY_EN
from tests.helpers.audio import wav_bytes
from tests.helpers.server import FIXTURES, RunningServer

pytestmark = pytest.mark.e2e

SHORT = (FIXTURES / "en_short.wav").read_bytes()
PATH = "/v1/audio/transcriptions"


def _post(
    server: RunningServer, files: Any = None, data: Any = None, **kwargs: Any
) -> httpx.Response:
    with server.client() as client:
        return client.post(PATH, files=files, data=data, **kwargs)


def _assert_error(
    response: httpx.Response, status: int, param: str | None, *fragments: str
) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    for fragment in fragments:
        assert fragment in error["message"], error["message"]
    assert "Traceback" not in response.text


@pytest.fixture(autouse=True)
def still_healthy_after(server: RunningServer) -> Iterator[None]:
    yield
    assert server.health()["status"] == "ok"
    with server.client() as client, (FIXTURES / "en_short.wav").open("rb") as handle:
        response = client.post(PATH, files={"file": handle}, data={"model": TINY_EN})
    assert response.status_code == 200
    assert "young man" in response.json()["text"]


def test_undecodable_garbage(server: RunningServer) -> None:
    garbage = np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    response = _post(server, {"file": ("clip.mp3", garbage)}, {"model": TINY_EN})
    _assert_error(response, 400, "file", "Could not decode")


def test_truncated_file(server: RunningServer) -> None:
    truncated = (FIXTURES / "en_librivox.m4a").read_bytes()[:3000]
    response = _post(server, {"file": ("clip.m4a", truncated)}, {"model": TINY_EN})
    _assert_error(response, 400, "file")


def test_empty_file(server: RunningServer) -> None:
    response = _post(server, {"file": ("clip.wav", b"")}, {"model": TINY_EN})
    _assert_error(response, 400, "file", "empty")


def test_header_only_wav(server: RunningServer) -> None:
    response = _post(server, {"file": ("clip.wav", wav_bytes(np.zeros(0)))}, {"model": TINY_EN})
    _assert_error(response, 400, "file")


def test_silence_only(server: RunningServer) -> None:
    silence = wav_bytes(np.zeros(16_000 * 3, dtype=np.int16))
    response = _post(server, {"file": ("silence.wav", silence)}, {"model": TINY_EN})
    _assert_error(response, 400, "file", "silence")


def test_unknown_model_lists_installed(server: RunningServer) -> None:
    response = _post(server, {"file": ("a.wav", SHORT)}, {"model": "whisper-9000"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert "whisper-9000" in error["message"]
    assert TINY_EN in error["message"] and "faster-whisper-base" in error["message"]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("response_format", "docx", "response_format"),
        ("temperature", "hot", "temperature"),
        ("temperature", "1.5", "between 0 and 1"),
        ("language", "klingon", "language"),
        ("language", "xx", "Unsupported language"),
        ("timestamp_granularities[]", "character", "granularity"),
    ],
)
def test_invalid_field_values_name_the_field(
    server: RunningServer, field: str, value: str, fragment: str
) -> None:
    data = {"model": "faster-whisper-base", field: value}
    if field.startswith("timestamp"):
        data["response_format"] = "verbose_json"
    response = _post(server, {"file": ("a.wav", SHORT)}, data)
    _assert_error(response, 400, field.rstrip("[]"), fragment)


def test_english_only_model_rejects_other_language(server: RunningServer) -> None:
    response = _post(server, {"file": ("a.wav", SHORT)}, {"model": TINY_EN, "language": "pt"})
    _assert_error(response, 400, "language", "supports only")


def test_word_timestamps_need_verbose_json(server: RunningServer) -> None:
    data = {"model": TINY_EN, "timestamp_granularities[]": "word"}
    response = _post(server, {"file": ("a.wav", SHORT)}, data)
    _assert_error(response, 400, "timestamp_granularities", "verbose_json")


def test_missing_file(server: RunningServer) -> None:
    response = _post(server, files={"other": ("a.txt", b"x")}, data={"model": TINY_EN})
    _assert_error(response, 400, "file", "file")


def test_file_sent_as_text_field(server: RunningServer) -> None:
    response = _post(
        server, files={"dummy": ("d.txt", b"x")}, data={"model": TINY_EN, "file": "abc"}
    )
    _assert_error(response, 400, "file")


def test_missing_model(server: RunningServer) -> None:
    response = _post(server, {"file": ("a.wav", SHORT)}, {})
    _assert_error(response, 400, "model", "model")


def test_not_multipart(server: RunningServer) -> None:
    response = _post(server, json={"model": TINY_EN, "file": "abc"})
    _assert_error(response, 400, "file", "multipart/form-data")


def test_malformed_multipart(server: RunningServer) -> None:
    body = (
        b'--XYZ\r\nContent-Disposition: form-data; name="model"\r\n\r\nfoo\r\n'
        b"--XYZ\r\nContent-Dispo"
    )
    response = _post(
        server, content=body, headers={"content-type": "multipart/form-data; boundary=XYZ"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_oversized_declared_length_is_rejected_before_reading(server: RunningServer) -> None:
    big = b"\0" * (26 * 1024 * 1024)
    response = _post(server, {"file": ("big.wav", big)}, {"model": TINY_EN})
    _assert_error(response, 413, "file", "25 MB")


def test_oversized_chunked_upload_is_cut_off(server: RunningServer) -> None:
    boundary = "theo-boundary"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n{TINY_EN}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        for _ in range(30):
            yield b"\1" * (1024 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    response = _post(
        server,
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    _assert_error(response, 413, "file", "25 MB")


def test_unknown_route_is_openai_shaped(server: RunningServer) -> None:
    with server.client() as client:
        response = client.get("/v1/nothing-here")
    _assert_error(response, 404, None)
