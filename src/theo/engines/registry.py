"""Engines are plug-ins found by name through entry points, imported only when chosen.

Theo's own engines are registered in its ``pyproject.toml``; any installed package can add
one by declaring an entry point in the group of its kind::

    [project.entry-points."theo.stt_engines"]
    my-engine = "my_package.backend:MyBackend"

A manifest's ``engine`` names the entry point; the worker subprocess loads it and calls it
with no arguments to get the backend. Nothing here imports an engine until it is chosen,
so listing engines is cheap and the API process never loads one.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from theo.types import ModelType

ENGINE_GROUPS: dict[ModelType, str] = {
    ModelType.STT: "theo.stt_engines",
    ModelType.TTS: "theo.tts_engines",
}
"""The entry-point group engines of each kind are registered in."""


class UnknownEngineError(ValueError):
    """No installed package registers an engine of that kind and name."""


def engine_names(kind: ModelType) -> list[str]:
    """The names of every installed engine of ``kind``, sorted."""
    return sorted({entry.name for entry in entry_points(group=ENGINE_GROUPS[kind])})


def _entry(kind: ModelType, name: str) -> EntryPoint:
    found = entry_points(group=ENGINE_GROUPS[kind], name=name)
    if not found:
        known = ", ".join(engine_names(kind)) or "none"
        raise UnknownEngineError(
            f"unknown {kind.value.upper()} engine '{name}' (installed: {known}); engines are "
            f"registered in the '{ENGINE_GROUPS[kind]}' entry-point group"
        )
    # Two packages registering one name: the first found wins, as importlib orders them.
    return next(iter(found))


def create_engine(kind: ModelType, name: str) -> object:
    """Import and instantiate the engine ``name`` of ``kind``.

    Raises:
        UnknownEngineError: no installed package registers it.
    """
    factory = _entry(kind, name).load()
    return factory()
