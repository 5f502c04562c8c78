"""The ``theo`` command: a thin click group; each subcommand lives in its own module."""

from __future__ import annotations

import click

from theo import __version__
from theo.cli.models import inspect_cmd, list_cmd, pull_cmd, remove_cmd
from theo.cli.ps import ps_cmd
from theo.cli.serve import serve_cmd
from theo.cli.speak import speak_cmd
from theo.cli.transcribe import transcribe_cmd, translate_cmd


@click.group()
@click.version_option(__version__, prog_name="theo")
def cli() -> None:
    """Theo OpenVoice: local speech-to-text and text-to-speech runtime."""


for command in (
    serve_cmd,
    pull_cmd,
    list_cmd,
    inspect_cmd,
    remove_cmd,
    ps_cmd,
    transcribe_cmd,
    translate_cmd,
    speak_cmd,
):
    cli.add_command(command)
