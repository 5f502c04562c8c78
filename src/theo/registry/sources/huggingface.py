"""The Hugging Face Hub source: ``hf_hub_download`` of each file into the staging directory.

``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_TOKEN`` and ``HF_HOME``
itself; a file already in the user's Hub cache is copied instead of downloaded again.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from theo.errors import DownloadError
from theo.logging import get_logger
from theo.registry.catalog import CatalogEntry, FileSpec, HuggingFaceSpec
from theo.registry.sources import ModelSource, QuietBar

if TYPE_CHECKING:
    from huggingface_hub import HfFileMetadata

log = get_logger("registry.huggingface")

# hf_hub_download(local_dir=...) keeps its bookkeeping here; it is no part of the model.
_HUB_METADATA_DIR = ".cache"


class HuggingFaceSource(ModelSource):
    """Downloads a catalog entry's files from one Hub repository."""

    def __init__(self, spec: HuggingFaceSpec) -> None:
        self.spec = spec

    def describe(self) -> str:
        """Where the files come from, for messages."""
        return self.spec.describe()

    def record(self) -> dict[str, Any]:
        """The repository and revision, for the installed manifest."""
        return {"kind": "huggingface", "repo": self.spec.repo, "revision": self._revision()}

    def expected(self, entry: CatalogEntry) -> list[FileSpec]:
        """The catalog's files, with the checksums of the variants this repository holds."""
        return self.spec.expected(entry.files)

    def fetch(self, entry: CatalogEntry, dest: Path, *, progress: bool) -> dict[str, str]:
        """Download every file of ``entry``; report the Hub's hash for files the catalog lacks."""
        from huggingface_hub import hf_hub_download  # noqa: PLC0415 - only needed to pull

        reported: dict[str, str] = {}
        files = self.expected(entry)
        current = self.spec.path_of(files[0].name)
        try:
            # hf_hub_download retries an unreachable Hub for half a minute before it looks in
            # its cache; one quick probe lets an offline pull go straight to the cache.
            reachable = self._metadata(current) is not None
            for file in files:
                current = self.spec.path_of(file.name)
                log.debug("hub_download", repo=self.spec.repo, file=current, online=reachable)
                hf_hub_download(
                    self.spec.repo,
                    current,
                    revision=self.spec.revision,
                    local_dir=dest,
                    local_files_only=not reachable,
                    tqdm_class=None if progress else QuietBar,
                )
                if current != file.name:
                    # Files in sub-folders of the repository land at the top, under their names.
                    os.replace(dest / current, dest / file.name)
                metadata = self._metadata(current) if file.sha256 is None and reachable else None
                if metadata is not None and metadata.etag:
                    reported[file.name] = metadata.etag
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise
            raise DownloadError(self._explain(exc, current)) from exc
        except Exception as exc:
            # Transport errors come from the Hub client's HTTP library, which changes
            # between huggingface_hub versions; every one of them means "this source failed".
            raise DownloadError(self._explain(exc, current)) from exc
        finally:
            shutil.rmtree(dest / _HUB_METADATA_DIR, ignore_errors=True)
            paths = [self.spec.path_of(f.name) for f in entry.files]
            for folder in {p.split("/")[0] for p in paths if "/" in p}:
                shutil.rmtree(dest / folder, ignore_errors=True)
        return reported

    def _metadata(self, filename: str) -> HfFileMetadata | None:
        """The Hub's metadata for one file (one try), or None if the Hub cannot be reached."""
        from huggingface_hub import get_hf_file_metadata, hf_hub_url  # noqa: PLC0415 - see fetch()
        from huggingface_hub.errors import HfHubHTTPError  # noqa: PLC0415 - see fetch()

        url = hf_hub_url(self.spec.repo, filename, revision=self.spec.revision)
        try:
            return get_hf_file_metadata(url)
        except HfHubHTTPError:
            raise  # the Hub answered (e.g. 404): the caller explains it
        except Exception:
            return None

    def _revision(self) -> str:
        return self.spec.revision or "main"

    def _explain(self, exc: Exception, filename: str) -> str:
        from huggingface_hub import constants  # noqa: PLC0415 - see fetch()
        from huggingface_hub.errors import (  # noqa: PLC0415 - see fetch()
            EntryNotFoundError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        endpoint = constants.ENDPOINT
        if isinstance(exc, RepositoryNotFoundError):
            return (
                f"repository {self.spec.repo} not found on {endpoint} (or it is private or gated)"
            )
        if isinstance(exc, RevisionNotFoundError):
            return f"revision {self._revision()} not found in {self.spec.repo}"
        if isinstance(exc, LocalEntryNotFoundError):
            reason = (
                "HF_HUB_OFFLINE is set"
                if constants.HF_HUB_OFFLINE
                else f"{endpoint} is unreachable"
            )
            return f"{reason} and {filename} is not in the local Hugging Face cache"
        if isinstance(exc, EntryNotFoundError):
            return f"{filename} not found in {self.spec.repo}@{self._revision()}"
        if isinstance(exc, HfHubHTTPError) and exc.response is not None:
            return f"{endpoint} answered HTTP {exc.response.status_code} for {filename}"
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"downloading {filename} failed: {detail}"
