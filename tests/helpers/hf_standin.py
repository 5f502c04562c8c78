"""A stand-in for the Hugging Face Hub's file resolver, for tests that run ``theo pull``.

It answers what ``huggingface_hub.hf_hub_download`` asks, the way the Hub does:

- ``HEAD|GET /{owner}/{repo}/resolve/{revision}/{filename}`` for a small file: 200 with
  ``X-Repo-Commit``, ``ETag`` (the git blob id) and ``Content-Length``.
- the same for an LFS file (``model.bin`` by default): 302 to a "CDN" URL on a different
  host name (``localhost`` instead of ``127.0.0.1``, so the client treats it as off-Hub
  and takes the metadata from this response), with ``X-Linked-Etag`` (the sha256) and
  ``X-Linked-Size``.
- ``GET /cdn/{owner}/{repo}/{filename}``: the bytes.
- unknown repository or file: 404 with the ``X-Error-Code`` the Hub sends.

Point a client at it with ``HF_ENDPOINT=hub.endpoint``.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass(frozen=True)
class HubFile:
    """A file the stand-in serves, and the hash it claims the file has."""

    path: Path
    lfs: bool
    etag: str


@dataclass
class HubStandIn:
    """A threaded HTTP server on 127.0.0.1 serving ``repos[repo_id][filename] -> path``.

    Args:
        repos: files to serve, by repository id then file name.
        lfs_files: names served as LFS files (redirect plus sha256 ETag).
        claimed_etags: ETags to report instead of the true hash of the served bytes.
    """

    repos: dict[str, dict[str, Path]]
    lfs_files: frozenset[str] = frozenset({"model.bin"})
    claimed_etags: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._files = {
            (repo, name): self._describe(name, path)
            for repo, files in self.repos.items()
            for name, path in files.items()
        }
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """The value for ``HF_ENDPOINT``."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HubStandIn:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _describe(self, name: str, path: Path) -> HubFile:
        lfs = name in self.lfs_files
        data = path.read_bytes()
        if lfs:
            etag = hashlib.sha256(data).hexdigest()
        else:
            etag = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        return HubFile(path=path, lfs=lfs, etag=self.claimed_etags.get(name, etag))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def log_message(self, format: str, *args: object) -> None:
                """Keep test output clean."""

            def _answer(self, *, body: bool) -> None:
                hub.requests.append((self.command, self.path))
                parts = [unquote(p) for p in self.path.split("?")[0].strip("/").split("/")]
                if len(parts) >= 5 and parts[2] == "resolve":
                    self._resolve(f"{parts[0]}/{parts[1]}", "/".join(parts[4:]), body=body)
                elif len(parts) >= 4 and parts[0] == "cdn":
                    self._cdn(f"{parts[1]}/{parts[2]}", "/".join(parts[3:]), body=body)
                else:
                    self._not_found("RepoNotFound")

            def _resolve(self, repo: str, name: str, *, body: bool) -> None:
                if repo not in hub.repos:
                    self._not_found("RepoNotFound")
                    return
                file = hub._files.get((repo, name))
                if file is None:
                    self._not_found("EntryNotFound")
                    return
                size = file.path.stat().st_size
                if file.lfs:
                    self.send_response(302)
                    self.send_header("Location", f"http://localhost:{hub.port}/cdn/{repo}/{name}")
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("ETag", f'"{file.etag}"')
                    self.send_header("X-Linked-Etag", f'"{file.etag}"')
                    self.send_header("X-Linked-Size", str(size))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._send_file(file, size, body=body, commit=True)

            def _cdn(self, repo: str, name: str, *, body: bool) -> None:
                file = hub._files.get((repo, name))
                if file is None:
                    self._not_found("EntryNotFound")
                    return
                self._send_file(file, file.path.stat().st_size, body=body, commit=False)

            def _send_file(self, file: HubFile, size: int, *, body: bool, commit: bool) -> None:
                self.send_response(200)
                if commit:
                    self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{file.etag}"')
                self.send_header("Content-Length", str(size))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if body:
                    with file.path.open("rb") as src:
                        shutil.copyfileobj(src, self.wfile)

            def _not_found(self, code: str) -> None:
                self.send_response(404)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", f"{code} (Theo test stand-in)")
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
