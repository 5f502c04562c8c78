from __future__ import annotations

from pathlib import Path

import pytest

from theo.config import Settings
from theo.errors import ManifestError
from theo.manifest import ModelManifest
from theo.types import ModelType


def test_env_variables_and_nesting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("THEO_HOME", str(tmp_path))
    monkeypatch.setenv("THEO_MAX_FILE_SIZE_MB", "1.5")
    monkeypatch.setenv("THEO_WORKER__MAX_RESTARTS", "7")
    monkeypatch.setenv("THEO_LOG_FORMAT", "json")
    settings = Settings()
    assert settings.resolved_models_dir == tmp_path / "models"
    assert settings.resolved_download_cache_dir == tmp_path / "cache"
    assert settings.max_file_size_bytes == int(1.5 * 1024 * 1024)
    assert settings.worker.max_restarts == 7
    assert settings.log_format == "json"
    assert Settings(host="0.0.0.0", port=9000).base_url == "http://127.0.0.1:9000"


def test_manifest_round_trip(tmp_path: Path) -> None:
    manifest = ModelManifest.from_dict(
        {
            "name": "faster-whisper-tiny.en",
            "type": "stt",
            "engine": "faster-whisper",
            "architecture": "encoder-decoder",
            "capabilities": {"languages": ["en"], "translation": False},
            "engine_config": {"beam_size": 1, "cpu_threads": 2},
        }
    )
    manifest.dump(tmp_path)
    loaded = ModelManifest.load(tmp_path)
    assert loaded == manifest
    assert loaded.type == ModelType.STT
    assert loaded.engine_config.beam_size == 1


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"type": "stt", "engine": "x"}, "name"),
        ({"name": "../evil", "type": "stt", "engine": "x"}, "name"),
        ({"name": "m", "type": "vision", "engine": "x"}, "type"),
        ({"name": "m", "type": "stt", "engine": "x", "bogus": 1}, "bogus"),
        ({"name": "m", "type": "stt", "engine": "x", "engine_config": {"device": "tpu"}}, "device"),
        (["not", "a", "mapping"], "mapping"),
    ],
)
def test_invalid_manifests_say_why(data: object, fragment: str) -> None:
    with pytest.raises(ManifestError, match=fragment):
        ModelManifest.from_dict(data)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not found"):
        ModelManifest.load(tmp_path)
    (tmp_path / "theo.yaml").write_text("name: [unclosed")
    with pytest.raises(ManifestError, match="invalid YAML"):
        ModelManifest.load(tmp_path)
