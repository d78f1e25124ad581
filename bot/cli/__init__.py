"""`deskbridge`: run the server and administer workspaces, connections, sync, the outbox, SLAs and API keys.

One module per command group; each imports only bot/cli/common.py (the root app, `run`, `fail`, the
workspace lookups), never another group. This module puts them together in `--help` order.
"""

from __future__ import annotations

import typer
from pydantic import ValidationError

from bot.cli import (
    admin,
    ai,
    apikey,
    connection,
    console,
    customer,
    db,
    intake,
    outbox,
    rmm,
    sla,
    sync,
    teams,
    workspace,
)
from bot.cli import doctor as doctor  # `doctor` sits on the root app too
from bot.cli import serve as serve  # `serve`, `background` and `secret-key` sit on the root app itself
from bot.cli.common import app

__all__ = ["app", "main"]

app.add_typer(db.app, name="db")
app.add_typer(workspace.app, name="workspace")
app.add_typer(connection.app, name="connection")
app.add_typer(apikey.app, name="apikey")
app.add_typer(admin.app, name="admin")
app.add_typer(console.app, name="console")
app.add_typer(outbox.app, name="outbox")
app.add_typer(sync.app, name="sync")
app.add_typer(sla.app, name="sla")
app.add_typer(rmm.app, name="rmm")
app.add_typer(teams.app, name="teams")
app.add_typer(ai.app, name="ai")
app.add_typer(intake.app, name="intake")
app.add_typer(customer.app, name="customer")


def main() -> None:
    """The `deskbridge` entry point. A bad DESKBRIDGE_* value is one line naming the variable and what it
    accepts, not a traceback."""
    try:
        app()
    except ValidationError as exc:
        for line in settings_errors(exc):
            typer.secho(f"Error: {line}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None


def settings_errors(exc: ValidationError) -> list[str]:
    """One line per invalid setting: the environment variable, what was wrong, what it accepts."""
    out = []
    for err in exc.errors():
        name = "DESKBRIDGE_" + "_".join(str(p) for p in err.get("loc", ())).upper()
        ctx = err.get("ctx") or {}
        allowed = f" (expected: {ctx['expected']})" if "expected" in ctx else ""
        got = err.get("input")
        shown = f" got {got!r}," if isinstance(got, (str, int, float)) and "secret" not in name.lower() \
            and "token" not in name.lower() and "key" not in name.lower() else ""
        out.append(f"{name}:{shown} {err.get('msg', 'invalid')}{allowed}.")
    return out
