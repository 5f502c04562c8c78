"""The local source (``theo pull NAME --from PATH``): a directory or archive, for offline installs.

Each catalog file is looked up by name at the top level of PATH, then inside its only
sub-folder, so both ``model/config.json`` and ``config.json`` layouts work. Archive members
are streamed into place under their catalog names: nothing from the archive chooses a
path on disk.
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO, Any

from theo.errors import DownloadError
from theo.registry.catalog import CatalogEntry
from theo.registry.sources import ModelSource, copy_stream, progress_bar

SUPPORTED = "a directory or a .tar.gz, .tgz, .tar or .zip archive"


class LocalSource(ModelSource):
    """Copies a catalog entry's files from a local directory or archive."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        """Where the files come from, for messages."""
        return f"local ({self.path})"

    def record(self) -> dict[str, Any]:
        """The absolute path, for the installed manifest."""
        return {"kind": "local", "path": str(self.path.resolve())}

    def fetch(self, entry: CatalogEntry, dest: Path, *, progress: bool) -> dict[str, str]:
        """Copy every file of ``entry`` out of the directory or archive."""
        names = [f.name for f in entry.files]
        if self.path.is_dir():
            self._copy_from_directory(names, dest, progress)
        elif not self.path.exists():
            raise DownloadError(f"{self.path} does not exist")
        elif zipfile.is_zipfile(self.path):
            self._copy_from_zip(names, dest, progress)
        elif tarfile.is_tarfile(self.path):
            self._copy_from_tar(names, dest, progress)
        else:
            raise DownloadError(f"{self.path} is not {SUPPORTED}")
        return {}

    def _copy_from_directory(self, names: list[str], dest: Path, progress: bool) -> None:
        folders = [c for c in self.path.iterdir() if c.is_dir() and not c.name.startswith(".")]
        roots = [self.path, *folders] if len(folders) == 1 else [self.path]
        for name in names:
            found = next((root / name for root in roots if (root / name).is_file()), None)
            if found is None:
                raise DownloadError(f"{name} not found in {self.path}")
            with found.open("rb") as src:
                _write(src, dest / name, found.stat().st_size, progress)

    def _copy_from_zip(self, names: list[str], dest: Path, progress: bool) -> None:
        try:
            with zipfile.ZipFile(self.path) as archive:
                members = {i.filename: i for i in archive.infolist() if not i.is_dir()}
                for name in names:
                    info = members[self._member_for(name, list(members))]
                    with archive.open(info) as src:
                        _write(src, dest / name, info.file_size, progress)
        except zipfile.BadZipFile as exc:
            raise DownloadError(f"{self.path} is a damaged zip archive: {exc}") from exc

    def _copy_from_tar(self, names: list[str], dest: Path, progress: bool) -> None:
        try:
            with tarfile.open(self.path, "r:*") as archive:
                members = {m.name: m for m in archive.getmembers() if m.isfile()}
                for name in names:
                    member = members[self._member_for(name, list(members))]
                    src = archive.extractfile(member)
                    if src is None:
                        raise DownloadError(f"{member.name} in {self.path} cannot be read")
                    with src:
                        _write(src, dest / name, member.size, progress)
        except (tarfile.TarError, EOFError) as exc:
            raise DownloadError(f"{self.path} is a damaged tar archive: {exc}") from exc

    def _member_for(self, name: str, members: list[str]) -> str:
        """The archive member holding ``name``: at the top level, or in the only top folder."""
        by_path = {PurePosixPath(m.removeprefix("./")): m for m in members}
        folders = {p.parts[0] for p in by_path if len(p.parts) > 1}
        candidates = [PurePosixPath(name)]
        if len(folders) == 1:
            candidates.append(PurePosixPath(folders.pop(), name))
        for candidate in candidates:
            if candidate in by_path:
                return by_path[candidate]
        raise DownloadError(f"{name} not found in {self.path}")


def _write(src: IO[bytes], target: Path, size: int, progress: bool) -> None:
    with target.open("wb") as out, progress_bar(size, target.name, enabled=progress) as bar:
        copy_stream(src, out, bar)
