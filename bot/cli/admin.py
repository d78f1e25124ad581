"""`deskbridge admin link`: a one-time sign-in link to the admin pages (/admin) for a workspace's admin."""

from __future__ import annotations

from datetime import datetime, timedelta

import typer

from bot.cli.common import WORKSPACE, run_in
from bot.main import Deskbridge
from core.admin_links import served_base_url

app = typer.Typer(help="The admin pages in the browser (/admin).", no_args_is_help=True)


@app.command("link")
def link(
    minutes: int = typer.Option(15, "--minutes", min=1, max=1440, help="How long the link stays valid"),
    workspace: str | None = WORKSPACE,
) -> None:
    """Print a sign-in link that works once and expires soon; only its hash is stored."""

    async def made(c: Deskbridge, ws: int) -> tuple[str, datetime, str, str]:
        token, expires = await c.admin_links.create(ws, created_by="cli", ttl=timedelta(minutes=minutes))
        served = await c.admin_links.served_address()
        if served is not None:  # what the running app recorded: its public URL, or the address it bound
            return token, expires, served[0], ""
        base = served_base_url(c.settings.public_url, c.settings.host, c.settings.port)
        return token, expires, base, "" if c.settings.public_url else (
            f"No running `deskbridge serve` has recorded its address in this database, so the link uses "
            f"this shell's settings ({base}). Start the app first, or set DESKBRIDGE_PUBLIC_URL.")

    token, expires, base, note = run_in(workspace, made)
    typer.echo(f"Open this link within {minutes} minutes (until {expires.isoformat(timespec='seconds')}); "
               "it works once:")
    typer.echo(f"{base}/admin/login?token={token}")
    if note:
        typer.echo(note)
