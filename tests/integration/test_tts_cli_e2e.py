"""`theo speak` against a real server: files that decode, errors that say what is wrong."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import KOKORO, PIPER
from tests.helpers.server import RunningServer, theo_executable
from theo.audio.decode import decode_audio

pytestmark = pytest.mark.e2e


def _speak(
    server: RunningServer, cwd: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [theo_executable(), "speak", *args, "--server", server.base_url],
        cwd=cwd,
        env={**os.environ, "THEO_LOG_FORMAT": "json"},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_speak_writes_the_format_its_output_suffix_names(
    tts_server: RunningServer, tmp_path: Path
) -> None:
    result = _speak(
        tts_server, tmp_path, "Hello from the command line.", "-m", PIPER, "-o", "hi.flac"
    )
    assert result.returncode == 0, result.stderr
    assert "Wrote" in result.stderr and "flac audio to hi.flac" in result.stderr
    decoded = decode_audio((tmp_path / "hi.flac").read_bytes())
    assert decoded.sample_rate == 22_050
    assert 1.0 <= decoded.duration_s <= 5.0


def test_speak_reads_stdin_and_takes_voice_language_speed_and_format(
    tts_server: RunningServer, tmp_path: Path
) -> None:
    result = _speak(
        tts_server,
        tmp_path,
        "-",
        *("--model", KOKORO, "--voice", "jm_kumo", "--language", "pt-br"),
        *("--speed", "1.5", "--format", "wav", "--output", "ola.audio"),
        stdin="Olá, tudo bem?",
    )
    assert result.returncode == 0, result.stderr
    decoded = decode_audio((tmp_path / "ola.audio").read_bytes())
    assert decoded.sample_rate == 24_000
    assert 0.3 <= decoded.duration_s <= 3.0


@pytest.mark.skipif(
    importlib.util.find_spec("sounddevice") is not None, reason="sounddevice would play instead"
)
def test_speak_without_output_or_sounddevice_writes_a_default_file(
    tts_server: RunningServer, tmp_path: Path
) -> None:
    result = _speak(tts_server, tmp_path, "Just a test.", "--model", PIPER)
    assert result.returncode == 0, result.stderr
    assert "sounddevice is not installed" in result.stderr
    assert decode_audio((tmp_path / "speech.mp3").read_bytes()).duration_s > 0.3


def test_speak_reports_errors_and_writes_nothing(tts_server: RunningServer, tmp_path: Path) -> None:
    result = _speak(tts_server, tmp_path, "Hi.", "-m", KOKORO, "-v", "nope", "-o", "x.mp3")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Unknown voice 'nope' for this model.")
    assert not (tmp_path / "x.mp3").exists()
    unreachable = subprocess.run(
        [theo_executable(), "speak", "Hi.", "-m", PIPER, "--server", "http://127.0.0.1:9"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unreachable.returncode == 1
    assert "cannot reach the Theo server" in unreachable.stderr
