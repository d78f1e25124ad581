"""`deskbridge`: run the server and administer workspaces, connections, sync, the outbox, SLAs and API keys.

One module per command group; each imports only bot/cli/common.py (the root app, `run`, `fail`, the
workspace lookups), never another group. This module puts them together in `--help` order.
"""

from __future__ import annotations

from bot.cli import apikey, connection, console, db, outbox, rmm, sla, sync, workspace
from bot.cli import serve as serve  # `serve`, `background` and `secret-key` sit on the root app itself
from bot.cli.common import app

__all__ = ["app", "main"]

app.add_typer(db.app, name="db")
app.add_typer(workspace.app, name="workspace")
app.add_typer(connection.app, name="connection")
app.add_typer(apikey.app, name="apikey")
app.add_typer(console.app, name="console")
app.add_typer(outbox.app, name="outbox")
app.add_typer(sync.app, name="sync")
app.add_typer(sla.app, name="sla")
app.add_typer(rmm.app, name="rmm")


def main() -> None:
    """The `deskbridge` entry point."""
    app()
