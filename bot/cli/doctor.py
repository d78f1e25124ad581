"""`deskbridge doctor`: check the configuration before going live (bot/doctor.py), ✓/✗ per line, exit 1 on ✗."""

from __future__ import annotations

import asyncio

import typer

from bot import doctor as checks
from bot import logging as dlog
from bot.cli.common import app, echo_json
from bot.main import build, settings_from_env


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json", help="JSON output")) -> None:
    """Check the database, secret key, PSA connections, Slack, Teams and alert webhook; say what to fix."""
    settings = settings_from_env()
    dlog.configure("ERROR", "text")  # the checks' own lines only

    async def main() -> list[checks.Check]:
        container = build(settings)  # never bootstrapped: doctor migrates and adds nothing
        try:
            return await checks.diagnose(container)
        finally:
            await container.aclose()

    found = asyncio.run(main())
    if as_json:
        echo_json({"ok": all(ch.mark != checks.FAIL for ch in found), "checks": [ch.as_dict() for ch in found]})
    else:
        typer.echo(checks.render(found))
    if any(ch.mark == checks.FAIL for ch in found):
        raise typer.Exit(1)
