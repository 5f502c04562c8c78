"""Engines are found by name through entry points; an installed package can add one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from theo.engines.registry import UnknownEngineError, create_engine, engine_names
from theo.engines.stt.engines import create_backend
from theo.types import ModelType


def test_theo_registers_its_own_engines() -> None:
    assert "faster-whisper" in engine_names(ModelType.STT)
    assert {"piper", "kokoro"} <= set(engine_names(ModelType.TTS))


def test_listing_engines_imports_none() -> None:
    code = (
        "import sys\n"
        "from theo.types import ModelType\n"
        "from theo.engines.registry import engine_names\n"
        "names = engine_names(ModelType.STT) + engine_names(ModelType.TTS)\n"
        "loaded = [m for m in sys.modules if m.endswith('_backend') or m == 'faster_whisper']\n"
        "print(len(names), loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "3 []"


def test_an_installed_package_adds_an_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "echo_engine.py").write_text("class EchoBackend:\n    engine_name = 'echo'\n")
    dist = tmp_path / "echo_engine-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-engine\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[theo.stt_engines]\necho = echo_engine:EchoBackend\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert "echo" in engine_names(ModelType.STT)
    assert create_backend("echo").engine_name == "echo"
    assert "echo" not in engine_names(ModelType.TTS)


def test_an_unknown_engine_names_the_installed_ones() -> None:
    with pytest.raises(UnknownEngineError, match=r"unknown TTS engine 'nope'.*kokoro, piper"):
        create_engine(ModelType.TTS, "nope")
