"""Model management commands: ``theo pull``, ``theo list``, ``theo inspect``, ``theo remove``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from theo.config import Settings
from theo.errors import TheoError
from theo.logging import configure_logging
from theo.registry.catalog import ModelCatalog
from theo.registry.installer import pull_model
from theo.registry.store import InstalledModel, ModelStore


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    if logging.getLogger().level > logging.DEBUG:
        # The Hub client's HTTP library logs every request at INFO: noise for a CLI command.
        for name in ("httpx", "httpx2"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return settings


@contextmanager
def _clean_errors() -> Iterator[None]:
    """Turn Theo's errors (and file-system errors) into one line on stderr and exit status 1."""
    try:
        yield
    except TheoError as exc:
        raise click.ClickException(exc.message) from exc
    except OSError as exc:
        raise click.ClickException(
            f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")
        ) from exc


def format_size(size: int) -> str:
    """A byte count for people: ``72.4 MiB``."""
    if size < 1024:
        return f"{size} B"
    value, unit = size / 1024, "KiB"
    for larger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{value:.1f} {unit}"


@click.command("pull")
@click.argument("name")
@click.option("--force", is_flag=True, help="Download and install again even if installed.")
@click.option(
    "--from",
    "from_path",
    type=click.Path(path_type=Path),
    help="Install from a local directory or archive (.tar.gz, .tgz, .tar, .zip) instead.",
)
def pull_cmd(name: str, force: bool, from_path: Path | None) -> None:
    """Download a model from the catalog, verify it and install it."""
    settings = _settings()
    with _clean_errors():
        model = pull_model(name, settings=settings, force=force, from_path=from_path)
    if model.already_installed:
        click.echo(f"{name} is already installed at {model.path} (use --force to reinstall).")
    else:
        size = format_size(model.size_bytes())
        click.echo(f"Installed {name} ({size}) from {model.source} at {model.path}.")


@click.command("list")
def list_cmd() -> None:
    """List installed models."""
    settings = _settings()
    with _clean_errors():
        models = ModelStore(settings.resolved_models_dir).list_installed()
        if not models:
            available = ", ".join(ModelCatalog.load(settings.catalog_path).names())
            click.echo(f"No models installed in {settings.resolved_models_dir}.")
            click.echo(f"Install one with `theo pull NAME`; available: {available}.")
            return
    rows = [("NAME", "TYPE", "ENGINE", "SIZE")]
    rows += [
        (m.name, str(m.manifest.type), m.manifest.engine, format_size(m.size_bytes()))
        for m in models
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@click.command("inspect")
@click.argument("name")
def inspect_cmd(name: str) -> None:
    """Show an installed model's manifest, capabilities, location and size."""
    settings = _settings()
    with _clean_errors():
        model = ModelStore(settings.resolved_models_dir).get(name)
    for line in _describe(model):
        click.echo(line)


@click.command("remove")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def remove_cmd(name: str, yes: bool) -> None:
    """Delete an installed model."""
    settings = _settings()
    store = ModelStore(settings.resolved_models_dir)
    with _clean_errors():
        model = store.get(name)
        if not yes:
            click.confirm(
                f"Remove {name} ({format_size(model.size_bytes())}) from {model.path}?", abort=True
            )
        store.remove(name)
    click.echo(f"Removed {name}.")


def _describe(model: InstalledModel) -> list[str]:
    manifest = model.manifest
    caps = manifest.capabilities
    source = ", ".join(f"{key}={_plain(value)}" for key, value in manifest.source.items())
    engine_config = manifest.engine_config.model_dump(mode="json")
    return [
        f"Name:          {manifest.name}",
        f"Type:          {manifest.type}",
        f"Engine:        {manifest.engine}",
        f"Architecture:  {manifest.architecture or '-'}",
        f"Description:   {manifest.description or '-'}",
        f"Path:          {model.path}",
        f"Size:          {format_size(model.size_bytes())}",
        f"Source:        {source or 'unknown'}",
        "Capabilities:",
        f"  languages:          {', '.join(caps.languages) if caps.languages else 'any'}",
        f"  translation:        {_yes_no(caps.translation)}",
        f"  word timestamps:    {_yes_no(caps.word_timestamps)}",
        f"  streaming:          {_yes_no(caps.streaming)}",
        f"  language detection: {_yes_no(caps.language_detection)}",
        "Engine config:",
        *(f"  {key}: {value}" for key, value in engine_config.items()),
    ]


def _plain(value: object) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"
