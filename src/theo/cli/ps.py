"""``theo ps``: the workers a running server has loaded, and their state."""

from __future__ import annotations

import click

from theo.cli.client import request, resolve_base_url, server_option


@click.command("ps")
@server_option
def ps_cmd(server_url: str | None) -> None:
    """Show the models loaded by the running server."""
    base_url = resolve_base_url(server_url)
    health = request("GET", base_url, "/health", timeout=10.0).json()
    workers = health.get("workers", [])
    if not workers:
        click.echo("No models loaded.")
        return
    header = f"{'MODEL':<28} {'STATE':<9} {'ENGINE':<15} {'PID':>7} {'PORT':>6} {'RESTARTS':>8}"
    click.echo(header)
    for w in workers:
        click.echo(
            f"{w['model']:<28} {w['state']:<9} {w['engine']:<15} {w['pid'] or '-':>7} "
            f"{w['port']:>6} {w['restarts']:>8}"
        )
