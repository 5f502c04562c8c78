"""The installed `theo transcribe --stream` against a real `theo serve` with real models."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TINY_EN, reference
from tests.helpers.server import FIXTURES, RunningServer, free_port, theo_executable, wait_for
from tests.helpers.wer import wer

pytestmark = pytest.mark.e2e

UTTERANCES = 5


def _stream(*args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [theo_executable(), "transcribe", "--stream", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("clip", ["en_librivox.wav", "en_librivox_44k_stereo.mp3"])
def test_streams_a_file_and_prints_one_final_per_utterance(
    server: RunningServer, clip: str
) -> None:
    result = _stream(
        str(FIXTURES / clip), "--model", TINY_EN, "--server", server.base_url, "--speed", "2"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == UTTERANCES, result.stdout
    assert all(line.strip() and "\r" not in line and "\x1b" not in line for line in lines)
    assert wer(reference("en_librivox.txt"), " ".join(lines)) <= 0.15, lines


def test_partials_can_be_shown_as_marked_lines_when_piped(server: RunningServer) -> None:
    result = _stream(
        str(FIXTURES / "en_librivox.wav"),
        "--model",
        TINY_EN,
        "--server",
        server.base_url,
        "--partials",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    finals = [line for line in lines if not line.startswith("… ")]
    assert len(finals) == UTTERANCES, lines
    assert len(lines) > len(finals), lines
    assert wer(reference("en_librivox.txt"), " ".join(finals)) <= 0.15, finals


def test_ctrl_c_closes_the_session_and_keeps_the_last_final(
    server: RunningServer, tmp_path: Path
) -> None:
    out_path, err_path = tmp_path / "out.txt", tmp_path / "err.txt"
    args = [theo_executable(), "transcribe", "--stream", str(FIXTURES / "en_librivox.wav")]
    args += ["--model", TINY_EN, "--server", server.base_url]
    with out_path.open("w") as out, err_path.open("w") as err:
        process = subprocess.Popen(args, stdout=out, stderr=err, text=True)
    try:
        wait_for(lambda: out_path.read_text().strip(), 60, "the first final")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0, err_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines = out_path.read_text().splitlines()
    assert 1 <= len(lines) < UTTERANCES, lines
    assert "dashwood" in lines[0].lower()
    assert "Stopping" in err_path.read_text()


def test_unknown_model_exits_1_with_the_servers_message(server: RunningServer) -> None:
    result = _stream(str(FIXTURES / "en_short.wav"), "--model", "nope", "--server", server.base_url)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: Model 'nope' is not installed."), result.stderr


def test_no_server_exits_1_with_the_message() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = _stream(str(FIXTURES / "en_short.wav"), "--model", TINY_EN, "--server", url)
    assert result.returncode == 1
    assert (
        result.stderr == f"Error: cannot reach the Theo server at {url}. Is `theo serve` running?\n"
    )
