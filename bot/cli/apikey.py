"""`deskbridge apikey create|list|revoke`: REST API keys (the key is printed once, at creation)."""

from __future__ import annotations

import typer

from bot.cli.common import WORKSPACE, cli_actor, run_in

app = typer.Typer(help="REST API keys (/api/msp-portal).", no_args_is_help=True)


@app.command("create")
def create(
    name: str = typer.Argument(..., help="A name for the key, e.g. the integration using it"),
    scope: list[str] = typer.Option(["read"], "--scope", help="read, write or admin (each includes the ones before)"),
    workspace: str | None = WORKSPACE,
) -> None:
    """Create a key and print it once; only its hash is stored."""
    info, token = run_in(workspace, lambda c, ws: c.apikeys.create(ws, name=name, scopes=scope, created_by="cli",
                                                                 actor=cli_actor(ws)))
    typer.echo(f"Created API key '{info.name}' (id {info.key_id}, scopes {', '.join(info.scopes)}).")
    typer.echo("Copy it now; it is not shown again:")
    typer.echo(token)


@app.command("list")
def list_keys(workspace: str | None = WORKSPACE) -> None:
    """List keys (never the keys themselves)."""
    keys = run_in(workspace, lambda c, ws: c.apikeys.list(ws))
    if not keys:
        typer.echo("No API keys. Create one with `deskbridge apikey create <name> --scope read`.")
    for k in keys:
        used = k.last_used_at.isoformat(timespec="seconds") if k.last_used_at else "never used"
        state = f"revoked {k.revoked_at.isoformat(timespec='seconds')}" if k.revoked_at else "active"
        typer.echo(f"{k.key_id}  {k.name:<24} {','.join(k.scopes):<18} {state:<30} {used}")


@app.command("revoke")
def revoke(
    key: str = typer.Argument(..., help="The key's name or id"),
    workspace: str | None = WORKSPACE,
) -> None:
    """Revoke a key; every running instance refuses it (401) within 5 seconds."""
    info = run_in(workspace, lambda c, ws: c.apikeys.revoke(ws, key, actor=cli_actor(ws)))
    typer.echo(f"Revoked API key '{info.name}' ({info.key_id}); every running instance refuses it within 5 s.")
