"""The process boundary holds: engine code stays in workers, the wire contract stays small.

``theo.engines`` runs only inside worker subprocesses, so nothing outside it may import it
(the manager starts workers by module name, a string). ``theo.wire`` is imported by both
processes, so it may import nothing of Theo but ``theo.types``, ``theo.errors`` and its
own stubs. Read from the source with ``ast``, so a lazy import inside a function counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import theo

SRC = Path(theo.__file__).resolve().parent
WIRE_MAY_IMPORT = ("theo.types", "theo.errors", "theo.wire")


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _theo_imports(path: Path) -> set[str]:
    """Every ``theo`` module ``path`` imports, at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name == "theo" or name.startswith("theo.")}


def _sources(package: str | None = None) -> list[Path]:
    root = SRC if package is None else SRC / package
    return sorted(p for p in root.rglob("*.py") if "_pb2" not in p.name)


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_scan_sees_imports() -> None:
    # Guards the two checks below against passing because the scan found nothing.
    assert "theo.engines.host" in _theo_imports(SRC / "engines" / "stt" / "__main__.py")
    assert "theo.workers.handle" in _theo_imports(SRC / "workers" / "manager.py")


@pytest.mark.parametrize("path", _sources(), ids=_module_name)
def test_only_engines_import_engines(path: Path) -> None:
    if _inside(_module_name(path), "theo.engines"):
        return
    leaked = {name for name in _theo_imports(path) if _inside(name, "theo.engines")}
    assert not leaked, f"{_module_name(path)} imports worker-only code: {sorted(leaked)}"


@pytest.mark.parametrize("path", _sources("wire"), ids=_module_name)
def test_wire_imports_only_types_and_errors(path: Path) -> None:
    extra = {
        name
        for name in _theo_imports(path)
        if not any(_inside(name, allowed) for allowed in WIRE_MAY_IMPORT)
    }
    assert not extra, f"{_module_name(path)} imports {sorted(extra)}"
