"""`deskbridge teams package`: the Teams app package (manifest + icons) an admin uploads to Teams."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import fail
from bot.main import settings_from_env
from bot.teams.manifest import ManifestError, package

app = typer.Typer(help="Microsoft Teams: the app package to upload.", no_args_is_help=True)


@app.command("package")
def package_cmd(
    out: Path = typer.Option(Path("deskbridge-teams.zip"), help="Where to write the zip"),
    version: str = typer.Option("1.0.0", help="The app version Teams shows (raise it for each upload)"),
) -> None:
    """Write the app package for DESKBRIDGE_TEAMS_APP_ID served at DESKBRIDGE_PUBLIC_URL."""
    settings = settings_from_env()
    if not settings.teams_app_id:
        raise fail("DESKBRIDGE_TEAMS_APP_ID is not set.",
                   "Set it to the bot's Microsoft App ID (Azure Bot resource -> Configuration), then run again.")
    try:
        path = package(settings.teams_app_id, settings.public_url or "", out, version=version)
    except ManifestError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"Wrote {path}. Upload it in Teams: Apps -> Manage your apps -> Upload an app "
               "(or the Teams admin center -> Teams apps -> Manage apps -> Upload).")
