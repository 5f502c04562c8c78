"""Bounded decoding through a real `theo serve`: bombs, absurd rates, long and damaged files.

The memory assertions watch the API process (the `theo serve` process itself, which decodes
uploads; engines run in worker subprocesses) while a request runs: its resident set is
sampled in a thread and, where the kernel allows, its high-water mark is reset before the
request, so a transient peak between two samples is still seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TINY_EN, reference
from tests.helpers.memory import measure_growth
from tests.helpers.server import FIXTURES, RunningServer, start_server
from tests.helpers.wer import normalize, wer
from tests.unit.audio.test_decode import bomb_flac, corrupted_mp3, looped_speech_flac, wav_declaring
from theo.audio.decode import StreamingDecoder

pytestmark = pytest.mark.e2e

PATH = "/v1/audio/transcriptions"
ENGINE_RATE = 16_000
TEN_MINUTES_PCM_MB = 600 * ENGINE_RATE * 2 / 2**20  # 18.3 MiB of 16 kHz PCM16
# The decoder peaks at 2x the PCM (its buffer and the returned copy); the PCM then goes to
# the worker in 1 MiB pieces (measured: +40 MiB for 10 minutes). The bound: under
# 60 MB for 10 minutes (18.3 MiB of PCM). The old decoder grew by ~500 MB here.
TEN_MINUTES_MAX_GROWTH_MB = 60


def peak_rss_growth_mb(pid: int, action: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``action`` and return its result and the process's peak RSS growth in MiB."""
    result, growth = measure_growth(pid, action)
    return result, growth.peak_mib


def _post(server: RunningServer, name: str, data: bytes, **fields: str) -> httpx.Response:
    with server.client(timeout=600.0) as client:
        return client.post(PATH, files={"file": (name, data)}, data={"model": TINY_EN, **fields})


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["param"] == "file"
    assert error["type"] == "invalid_request_error"
    return str(error["message"])


@pytest.fixture(scope="module")
def warm_server(server: RunningServer) -> RunningServer:
    """The shared server after one ordinary request, so first-use costs are not counted."""
    response = _post(server, "short.wav", (FIXTURES / "en_short.wav").read_bytes())
    assert response.status_code == 200, response.text
    return server


@pytest.fixture(scope="module")
def five_second_server(
    theo_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A second `theo serve` (tiny.en only) with THEO_MAX_AUDIO_DURATION_S=5."""
    models = tmp_path_factory.mktemp("five-second-models")
    (models / TINY_EN).symlink_to(theo_home / "models" / TINY_EN, target_is_directory=True)
    log_path = tmp_path_factory.mktemp("five-second-logs") / "serve.log"
    running = start_server(
        theo_home, log_path, models_dir=models, extra_env={"THEO_MAX_AUDIO_DURATION_S": "5"}
    )
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


# --------------------------------------------------------------------------- tests


def test_flac_bomb_is_rejected_early_without_memory_growth(warm_server: RunningServer) -> None:
    bomb = bomb_flac()
    assert len(bomb) < 30_000  # 41 minutes of audio in a few KB

    response, growth = peak_rss_growth_mb(
        warm_server.process.pid, lambda: _post(warm_server, "bomb.flac", bomb)
    )

    message = _error(response, 400, "invalid_value")
    assert "decompression bomb" in message
    assert f"{len(bomb)} bytes" in message
    assert growth < 50, f"API process grew by {growth:.1f} MB"


def test_one_hertz_wav_is_rejected_before_decoding(warm_server: RunningServer) -> None:
    wav = wav_declaring(1)
    assert len(wav) == 224

    response, growth = peak_rss_growth_mb(
        warm_server.process.pid, lambda: _post(warm_server, "slow.wav", wav)
    )

    message = _error(response, 400, "invalid_value")
    assert "1 Hz" in message and "8000-192000 Hz" in message
    assert growth < 50, f"API process grew by {growth:.1f} MB"


def test_ten_minute_recording_transcribes_in_bounded_memory(warm_server: RunningServer) -> None:
    recording = looped_speech_flac(600)

    response, growth = peak_rss_growth_mb(
        warm_server.process.pid, lambda: _post(warm_server, "long.flac", recording)
    )

    assert response.status_code == 200, response.text
    words = normalize(response.json()["text"]).split()
    # The 27.6 s clip is looped ~21.7 times: its phrases come back all through the file.
    assert words.count("amiable") >= 30, words[:100]
    assert words.count("respectable") >= 15
    assert growth < TEN_MINUTES_MAX_GROWTH_MB, f"API process grew by {growth:.1f} MB"


def test_corrupted_mp3_skips_the_bad_packet(warm_server: RunningServer) -> None:
    damaged = corrupted_mp3()
    with StreamingDecoder(damaged) as decoder:  # the damage really breaks a packet
        for _ in decoder.frames():
            pass
        assert decoder.corrupt_packets >= 1

    response = _post(warm_server, "damaged.mp3", damaged)

    assert response.status_code == 200, response.text
    assert wer(reference("en_librivox.txt"), response.json()["text"]) <= 0.10
    assert '"audio_packets_skipped"' in warm_server.log_text()


def test_audio_longer_than_the_limit_gets_413(five_second_server: RunningServer) -> None:
    long_clip = (FIXTURES / "en_librivox.flac").read_bytes()  # 27 s

    message = _error(_post(five_second_server, "long.flac", long_clip), 413, "audio_too_long")

    assert "5 s" in message and "THEO_MAX_AUDIO_DURATION_S" in message
    short = _post(five_second_server, "short.wav", (FIXTURES / "en_short.wav").read_bytes())
    assert short.status_code == 200, short.text
    assert "young man" in short.json()["text"]
