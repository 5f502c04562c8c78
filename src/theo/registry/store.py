"""Installed models: the directories under ``$THEO_HOME/models`` that hold a valid manifest."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from theo.errors import ManifestError, ModelNotFoundError
from theo.logging import get_logger
from theo.manifest import MANIFEST_FILENAME, ModelManifest
from theo.types import ModelType

log = get_logger("registry.store")


@dataclass(frozen=True, slots=True)
class InstalledModel:
    """A model directory with its parsed manifest."""

    name: str
    path: Path
    manifest: ModelManifest

    def size_bytes(self) -> int:
        """Total size of the model's files."""
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())


class ModelStore:
    """Scans and manages the models directory.

    Directories whose names start with ``.`` are in-progress installs and never listed,
    so a partial download can never show up as an installed model.
    """

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir

    def list_installed(self, model_type: ModelType | None = None) -> list[InstalledModel]:
        """Every valid installed model, sorted by name; invalid directories are skipped."""
        if not self.models_dir.is_dir():
            return []
        models: list[InstalledModel] = []
        for child in sorted(self.models_dir.iterdir()):
            if child.name.startswith(".") or not (child / MANIFEST_FILENAME).is_file():
                continue
            try:
                manifest = ModelManifest.load(child)
            except ManifestError as exc:
                log.warning("invalid_manifest_skipped", path=str(child), error=exc.message)
                continue
            if model_type is None or manifest.type == model_type:
                models.append(InstalledModel(name=manifest.name, path=child, manifest=manifest))
        return models

    def names(self) -> list[str]:
        """Names of every installed model."""
        return [m.name for m in self.list_installed()]

    def get(self, name: str) -> InstalledModel:
        """The installed model called ``name``; raises :class:`ModelNotFoundError`."""
        for model in self.list_installed():
            if model.name == name:
                return model
        raise ModelNotFoundError(name, self.names())

    def is_installed(self, name: str) -> bool:
        """Whether a valid model called ``name`` is installed."""
        return any(m.name == name for m in self.list_installed())

    def path_for(self, name: str) -> Path:
        """Directory a model called ``name`` is (or would be) installed in."""
        return self.models_dir / name

    def remove(self, name: str) -> Path:
        """Delete an installed model's directory; raises :class:`ModelNotFoundError`."""
        model = self.get(name)
        shutil.rmtree(model.path)
        log.info("model_removed", model=name, path=str(model.path))
        return model.path
