from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

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


@pytest.mark.parametrize("value", ["-1", "17", "two"])
def test_engine_lanes_out_of_range_or_not_a_number_are_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("THEO_SCHEDULER__ENGINE_LANES", value)
    with pytest.raises(ValidationError, match="engine_lanes"):
        Settings()


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
        ({"name": "m", "type": "stt", "engine": "x", "engine_config": {"lanes": -1}}, "lanes"),
        ({"name": "m", "type": "stt", "engine": "x", "engine_config": {"lanes": 17}}, "lanes"),
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


def test_unknown_theo_variables_are_reported_with_a_likely_name() -> None:
    from theo.config import unknown_setting_variables  # noqa: PLC0415

    environ = {
        "THEO_HOME": "/x",
        "THEO_SESSION__MAX_SESSIONS": "3",
        "THEO_DEFAULT_MODELS": "a,b",  # read by scripts/serve.sh, not by the settings
        "THEO_MAX_FILE_SIZ_MB": "3",
        "theo_session__max_backlog": "4",
        "THEO_NONSENSE": "1",
        "PATH": "/bin",
    }
    assert unknown_setting_variables(environ) == {
        "THEO_MAX_FILE_SIZ_MB": "THEO_MAX_FILE_SIZE_MB",
        "theo_session__max_backlog": "THEO_SESSION__MAX_BACKLOG_S",
        "THEO_NONSENSE": None,
    }


def test_engine_config_keys_are_checked_per_engine() -> None:
    base = {"name": "m", "type": "tts", "engine": "kokoro"}
    ok = ModelManifest.from_dict({**base, "engine_config": {"default_voice": "jm_kumo"}})
    assert ok.engine_config.model_extra == {"default_voice": "jm_kumo"}
    with pytest.raises(ManifestError, match=r"voice_genders.*not read by engine 'kokoro'"):
        ModelManifest.from_dict({**base, "engine_config": {"voice_genders": {}}})
    stt = {"name": "m", "type": "stt", "engine": "faster-whisper"}
    with pytest.raises(ManifestError, match="beam_sise"):
        ModelManifest.from_dict({**stt, "engine_config": {"beam_sise": 2}})
    # An engine Theo does not know (a plug-in) keeps its own keys.
    plugin = ModelManifest.from_dict({**stt, "engine": "other", "engine_config": {"x": 1}})
    assert plugin.engine_config.model_extra == {"x": 1}
