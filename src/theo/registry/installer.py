"""``theo pull``: fetch a catalog model from its sources, verify every file, install atomically.

Files land in a hidden staging directory inside the models directory (never listed by
:class:`ModelStore`). Only after every file matches its checksum and the manifest is written
is the directory renamed into place, so a failed or interrupted pull never leaves a model
that ``theo list`` shows.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from theo.config import Settings
from theo.errors import ChecksumError, DownloadError, TheoError
from theo.logging import get_logger
from theo.manifest import ModelManifest
from theo.registry.catalog import CatalogEntry, FileSpec, ModelCatalog
from theo.registry.sources import ModelSource, progress_bar, source_for
from theo.registry.sources.local import LocalSource
from theo.registry.store import InstalledModel, ModelStore

log = get_logger("registry.installer")

_CHUNK = 1 << 20


class DiskSpaceError(DownloadError):
    """The disk filled up while a model was being written; other sources would fail too."""

    retryable = False


@dataclass(frozen=True, slots=True)
class PulledModel(InstalledModel):
    """An installed model, plus how this pull obtained it."""

    source: str = ""
    """The source that delivered the files (``kind (location)``); empty if already installed."""
    already_installed: bool = False
    """True when the model was installed before and nothing was fetched."""


def pull_model(
    name: str,
    *,
    settings: Settings,
    catalog: ModelCatalog | None = None,
    force: bool = False,
    from_path: Path | None = None,
    progress: bool = True,
) -> PulledModel:
    """Install the catalog model ``name`` into ``settings.resolved_models_dir``.

    Args:
        name: catalog name of the model.
        settings: where models and the download cache live.
        catalog: the catalog to read; the packaged one (or ``$THEO_CATALOG_PATH``) if None.
        force: replace an existing install (the old one stays usable until the new one is in place).
        from_path: a local directory or archive to take the files from, instead of the
            catalog's sources.
        progress: show progress bars on stderr.

    Returns:
        The installed model; ``already_installed`` is set when there was nothing to do.

    Raises:
        CatalogError: ``name`` is not in the catalog.
        ChecksumError: every source delivered a file that does not match its checksum.
        DownloadError: no source could deliver the files (:class:`DiskSpaceError` if the
            disk filled up).
    """
    entry = (catalog if catalog is not None else ModelCatalog.load(settings.catalog_path)).get(name)
    sources: list[ModelSource] = (
        [LocalSource(from_path)]
        if from_path is not None
        else [source_for(spec, settings) for spec in entry.sources]
    )
    return install(
        entry, sources, models_dir=settings.resolved_models_dir, force=force, progress=progress
    )


def install(
    entry: CatalogEntry,
    sources: Sequence[ModelSource],
    *,
    models_dir: Path,
    force: bool = False,
    progress: bool = True,
) -> PulledModel:
    """Try ``sources`` in order until one delivers files that verify, then install them.

    See :func:`pull_model` for the arguments, result and errors.
    """
    store = ModelStore(models_dir)
    target = store.path_for(entry.name)
    if not force and store.is_installed(entry.name):
        existing = store.get(entry.name)
        log.info("model_already_installed", model=entry.name, path=str(existing.path))
        return PulledModel(existing.name, existing.path, existing.manifest, already_installed=True)
    if not force and target.exists():
        raise DownloadError(
            f"{target} exists but holds no valid model; pull with --force to replace it"
        )
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"Cannot create the models directory {models_dir}: {exc}") from exc

    failures: list[tuple[ModelSource, TheoError]] = []
    for source in sources:
        log.info("pull_attempt", model=entry.name, source=source.describe())
        try:
            manifest = _install_from(source, entry, models_dir, target, progress=progress)
        except DiskSpaceError:
            raise
        except (DownloadError, ChecksumError) as exc:
            log.warning(
                "pull_source_failed", model=entry.name, source=source.describe(), error=exc.message
            )
            failures.append((source, exc))
            continue
        log.info("model_installed", model=entry.name, source=source.describe(), path=str(target))
        return PulledModel(manifest.name, target, manifest, source=source.describe())
    raise _summarise(entry.name, failures)


def _install_from(
    source: ModelSource, entry: CatalogEntry, models_dir: Path, target: Path, *, progress: bool
) -> ModelManifest:
    staging = models_dir / f".pull-{entry.name}-{secrets.token_hex(4)}"
    try:
        staging.mkdir()
        reported = source.fetch(entry, staging, progress=progress)
        for spec in source.expected(entry):
            _verify(staging / spec.name, spec, reported.get(spec.name), progress=progress)
        manifest = entry.to_manifest(source.record())
        manifest.dump(staging)
        _move_into_place(staging, target)
        return manifest
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskSpaceError(_disk_full_message(entry, models_dir)) from exc
        raise DownloadError(f"{exc.filename or staging}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _verify(path: Path, spec: FileSpec, reported: str | None, *, progress: bool) -> None:
    """Check size and digest of one delivered file against the catalog (or the source's word)."""
    if not path.is_file():
        raise DownloadError(f"the source delivered no {spec.name}")
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        raise ChecksumError(f"{spec.name} has {size} bytes, expected {spec.size}")
    expected = spec.sha256 or (reported.lower() if reported else None)
    if expected is None:
        raise ChecksumError(
            f"no checksum to verify {spec.name}: the catalog has none and the source reported none"
        )
    if len(expected) == 64:
        algorithm, digest = "sha256", hashlib.sha256()
    elif len(expected) == 40:
        # The Hub identifies small (non-LFS) files by their git blob id; sha1 is git's choice.
        algorithm, digest = "git blob sha1", hashlib.sha1(f"blob {size}\0".encode())
    else:
        raise ChecksumError(f"cannot verify {spec.name}: unrecognised digest '{expected}'")
    with path.open("rb") as fh, progress_bar(size, f"verify {spec.name}", enabled=progress) as bar:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    if digest.hexdigest() != expected:
        raise ChecksumError(
            f"checksum mismatch for {spec.name}: expected {algorithm} {expected}, "
            f"got {digest.hexdigest()}"
        )


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; an old ``target`` goes only once the new one is in."""
    if not target.exists():
        os.rename(staging, target)
        return
    aside = target.with_name(f".old-{target.name}-{secrets.token_hex(4)}")
    os.rename(target, aside)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _disk_full_message(entry: CatalogEntry, models_dir: Path) -> str:
    sizes = [f.size for f in entry.files]
    need = (
        f" (it needs {_gib(sum(s for s in sizes if s is not None))})" if None not in sizes else ""
    )
    return (
        f"Not enough disk space in {models_dir} to install {entry.name}{need}; "
        "free some space and pull again"
    )


def _gib(size: int) -> str:
    return f"{size / 1024**3:.2f} GiB"


def _summarise(name: str, failures: list[tuple[ModelSource, TheoError]]) -> TheoError:
    detail = "; ".join(f"{source.describe()}: {exc.message}" for source, exc in failures)
    if failures and all(isinstance(exc, ChecksumError) for _, exc in failures):
        return ChecksumError(f"Could not pull {name}: {detail}")
    return DownloadError(f"Could not pull {name}: {detail or 'the catalog lists no source'}")
