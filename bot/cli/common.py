"""What every `deskbridge` command group shares: the root typer app, `run`, `fail`, the workspace option.

Group modules (bot/cli/<group>.py) import this module and never each other; bot/cli/__init__.py puts
them together. An import-linter contract in pyproject.toml keeps it that way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

import typer

from bot import logging as dlog
from bot.main import Deskbridge, bootstrap, build, settings_from_env
from core.context import Actor
from core.errors import DeskbridgeError

T = TypeVar("T")

app = typer.Typer(help="Deskbridge: chat-ops service desk for MSPs.", no_args_is_help=True,
                  pretty_exceptions_enable=False)

def cli_actor(workspace_id: int) -> Actor:
    """Who a command acts as: an admin named after the shell user, as the audit log records it ("cli:root")."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = "unknown"
    return replace(Actor.system(workspace_id), display=f"cli:{user}"[:128])


# The `--workspace` option of every command that acts on one workspace (default: DESKBRIDGE_WORKSPACE_SLUG).
WORKSPACE = typer.Option(None, help="Workspace slug")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deskbridge")
    except PackageNotFoundError:  # pragma: no cover
        return "0+unknown"


def _version_cb(value: bool) -> None:
    if value:
        typer.echo(f"deskbridge {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_cb, is_eager=True, help="Show the version."),
) -> None:
    """Deskbridge command line."""


def fail(message: str, hint: str | None = None, code: int = 1) -> typer.Exit:
    """Print an error (and a hint) to stderr; the exit to raise."""
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    if hint:
        typer.echo(f"  {hint}", err=True)
    return typer.Exit(code)


def run(work: Callable[[Deskbridge], Awaitable[T]], *, quiet_banner: bool = True) -> T:
    """Build and bootstrap the container, run `work`, close it; DeskbridgeError becomes a clean exit 1."""
    settings = settings_from_env()
    dlog.configure(settings.log_level if not quiet_banner else "ERROR", "text")

    async def main() -> T:
        container = build(settings)
        try:
            await bootstrap(container)
            return await work(container)
        finally:
            await container.aclose()

    try:
        return asyncio.run(main())
    except DeskbridgeError as exc:
        raise fail(exc.message, exc.hint) from None


def run_in(workspace: str | None, work: Callable[[Deskbridge, int], Awaitable[T]]) -> T:
    """`run` with the workspace of `--workspace` (or the default one) looked up first: work(container, ws)."""

    async def resolved(c: Deskbridge) -> T:
        return await work(c, await workspace_id(c, workspace))

    return run(resolved)


def run_on(connection: str, workspace: str | None, work: Callable[[Deskbridge, int, int], Awaitable[T]]) -> T:
    """`run` with the workspace and the named PSA connection looked up first: work(container, ws, connection_id)."""

    async def resolved(c: Deskbridge) -> T:
        ws = await workspace_id(c, workspace)
        conn = await c.connections.by_name(ws, connection)
        assert conn.id is not None  # a stored row
        return await work(c, ws, conn.id)

    return run(resolved)


async def workspace_id(container: Deskbridge, slug: str | None) -> int:
    """The id of the workspace named by `--workspace`, or of the default one."""
    if slug is None:
        return container.default_workspace_id
    ws = await container.workspaces.by_slug(slug)
    assert ws.id is not None  # a stored row
    return ws.id


def echo_json(data: object) -> None:
    """Print `data` as indented JSON (dates and other values as strings)."""
    typer.echo(json.dumps(data, indent=2, default=str))
