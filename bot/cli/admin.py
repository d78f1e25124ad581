"""`deskbridge admin link`: a one-time sign-in link to the admin pages (/admin) for a workspace's admin."""

from __future__ import annotations

from datetime import datetime, timedelta

import typer

from bot.cli.common import WORKSPACE, run_in
from bot.main import Deskbridge

app = typer.Typer(help="The admin pages in the browser (/admin).", no_args_is_help=True)


@app.command("link")
def link(
    minutes: int = typer.Option(15, "--minutes", min=1, max=1440, help="How long the link stays valid"),
    workspace: str | None = WORKSPACE,
) -> None:
    """Print a sign-in link that works once and expires soon; only its hash is stored."""

    async def made(c: Deskbridge, ws: int) -> tuple[str, datetime, str, bool]:
        token, expires = await c.admin_links.create(ws, created_by="cli", ttl=timedelta(minutes=minutes))
        local = f"http://{c.settings.host}:{c.settings.port}"
        return token, expires, (c.settings.public_url or local).rstrip("/"), c.settings.public_url is None

    token, expires, base, guessed = run_in(workspace, made)
    typer.echo(f"Open this link within {minutes} minutes (until {expires.isoformat(timespec='seconds')}); "
               "it works once:")
    typer.echo(f"{base}/admin/login?token={token}")
    if guessed:
        typer.echo(f"DESKBRIDGE_PUBLIC_URL is not set: the link uses the address `serve` listens on ({base}).")
