"""Bounded decoding through a real `theo serve`: bombs, absurd rates, long and damaged files.

The memory assertions watch the API process (the `theo serve` process itself, which decodes
uploads; engines run in worker subprocesses) while a request runs: its resident set is
sampled in a thread and, where the kernel allows, its high-water mark is reset before the
request, so a transient peak between two samples is still seen.
"""

from __future__ import annotations

import io
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest

from tests.conftest import TINY_EN, reference
from tests.helpers.audio import read_wav
from tests.helpers.server import FIXTURES, RunningServer, start_server
from tests.helpers.wer import normalize, wer
from theo.audio.decode import StreamingDecoder

pytestmark = pytest.mark.e2e

PATH = "/v1/audio/transcriptions"
MB = 1024 * 1024
ENGINE_RATE = 16_000


# --------------------------------------------------------------------------- audio builders


def _encode_flac(blocks: Iterator[np.ndarray], options: dict[str, str] | None = None) -> bytes:
    """16 kHz mono FLAC of the given int16 blocks, encoded with PyAV."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=ENGINE_RATE, layout="mono", options=options)
        for block in blocks:
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(block.reshape(1, -1)), format="s16", layout="mono"
            )
            frame.sample_rate = ENGINE_RATE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def bomb_flac(seconds: float = 41 * 60) -> bytes:
    """A constant non-zero signal in maximal (65535-sample) FLAC blocks: bytes per hour."""
    block = np.full(65_535, 3_000, dtype=np.int16)
    total = round(seconds * ENGINE_RATE)
    sizes = [block.size] * (total // block.size) + [total % block.size]
    return _encode_flac((block[:size] for size in sizes if size), {"frame_size": "65535"})


def looped_speech_flac(seconds: float) -> bytes:
    """Real speech (en_librivox.wav, 16 kHz) repeated with 0.5 s gaps for ``seconds``."""
    speech, rate = read_wav(FIXTURES / "en_librivox.wav")
    assert rate == ENGINE_RATE
    looped = np.concatenate([speech, np.zeros(rate // 2, dtype=np.int16)])
    total = round(seconds * rate)

    def blocks() -> Iterator[np.ndarray]:
        done = 0
        while done < total:
            block = looped[: total - done]
            done += block.size
            yield block

    return _encode_flac(blocks())


def one_hertz_wav() -> bytes:
    """224 bytes: a PCM16 mono WAV header declaring 1 Hz, then 90 samples (90 "seconds")."""
    data = np.full(90, 12_000, dtype="<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, 1, 2, 2, 16)  # PCM, mono, 1 Hz, 2 B/s, align 2, 16 bit
    header = (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
    )
    return header + data


def corrupted_mp3() -> bytes:
    """The fixture MP3 with 8 bytes overwritten at the frame nearest its middle."""
    original = (FIXTURES / "en_librivox_44k_stereo.mp3").read_bytes()
    with av.open(io.BytesIO(original)) as container:
        positions = [p.pos for p in container.demux(container.streams.audio[0]) if p.size]
    middle = next(pos for pos in positions if pos >= len(original) // 2)
    damaged = bytearray(original)
    damaged[middle : middle + 8] = b"\xff" * 8
    return bytes(damaged)


# --------------------------------------------------------------------------- memory watch


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def peak_rss_growth_mb(pid: int, action: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``action`` and return its result and the process's peak RSS growth in MiB."""
    baseline = _status_kb(pid, "VmRSS")
    try:
        # "5" resets VmHWM to the current RSS, so afterwards it is the peak of this request.
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        exact = True
    except OSError:
        exact = False
    sampled = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal sampled
        while not done.is_set():
            sampled = max(sampled, _status_kb(pid, "VmRSS"))
            done.wait(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = action()
    finally:
        done.set()
        sampler.join()
    peak = max(sampled, _status_kb(pid, "VmHWM")) if exact else sampled
    return result, (peak - baseline) / 1024


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
    wav = one_hertz_wav()
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
    # 16 kHz PCM16 of 10 minutes is 18.3 MiB; the old decoder grew by ~500 MB here.
    assert growth < 60, f"API process grew by {growth:.1f} MB"


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
