"""`deskbridge db upgrade|current`: the database schema."""

from __future__ import annotations

import typer

from bot.main import migrate, settings_from_env

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade() -> None:
    """Apply all pending migrations."""
    settings = settings_from_env()
    migrate.upgrade(settings.database_url)
    typer.echo("Database is up to date.")


@app.command("current")
def db_current() -> None:
    """Show the applied and the latest schema revisions."""
    url = settings_from_env().database_url
    typer.echo(f"applied: {', '.join(sorted(migrate.database_heads(url))) or '(none)'}")
    typer.echo(f"latest:  {', '.join(sorted(migrate.script_heads(url)))}")
