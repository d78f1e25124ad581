"""`deskbridge`: run the server and administer workspaces, connections and the database.

Feature commands (sync, outbox, sla, console) live in bot/commands/ and are registered at the bottom.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from bot import logging as dlog
from bot.main import Deskbridge, bootstrap, build, settings_from_env
from core.errors import DeskbridgeError

T = TypeVar("T")

app = typer.Typer(help="Deskbridge: chat-ops service desk for MSPs.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
ws_app = typer.Typer(help="Workspaces (one per MSP).", no_args_is_help=True)
conn_app = typer.Typer(help="PSA connections.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(ws_app, name="workspace")
app.add_typer(conn_app, name="connection")


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


def workspace_id(container: Deskbridge, slug: str | None) -> Awaitable[int]:
    async def resolve() -> int:
        if slug is None:
            assert container.default_workspace_id is not None
            return container.default_workspace_id
        return (await container.workspaces.by_slug(slug)).id  # type: ignore[return-value]

    return resolve()


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


# ---------------------------------------------------------------- serve


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Listen address (default from DESKBRIDGE_HOST)."),
    port: int | None = typer.Option(None, help="Port (default from DESKBRIDGE_PORT)."),
) -> None:
    """Run the web app, the scheduler and the outbox worker in one process."""
    import uvicorn

    from bot.api.app import create_app

    settings = settings_from_env(host=host, port=port)
    dlog.configure(settings.log_level, settings.log_format)
    container = build(settings)
    uvicorn.run(create_app(container, settle_gc=True), host=settings.host, port=settings.port, log_config=None,
                access_log=False, lifespan="on")


@app.command()
def background() -> None:
    """Run the scheduler (sync, SLA monitor, housekeeping) and the outbox worker, without the web app.

    For a split deployment: `serve` with DESKBRIDGE_RUN_SCHEDULER=false and DESKBRIDGE_RUN_OUTBOX_WORKER=false
    answers requests only (Slack acks never wait behind a sync), and this process does the work.
    """
    import signal

    from bot import gctune, jobs

    settings = settings_from_env()
    dlog.configure(settings.log_level, settings.log_format)

    async def main() -> None:
        container = build(settings)
        await bootstrap(container)
        container.settle_gc = True  # long-running: the same collector settings as `serve` (bot/gctune.py)
        scheduler = jobs.build_scheduler(container)
        scheduler.start()
        gctune.settle()
        worker = container.outbox_worker
        task = asyncio.create_task(worker.run(), name="outbox-worker") if worker is not None else None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        typer.echo("Deskbridge background work running (scheduler and outbox worker); Ctrl-C to stop.", err=True)
        try:
            await stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            if task is not None and worker is not None:
                worker.stop()
                await asyncio.gather(task, return_exceptions=True)
            await container.aclose()

    asyncio.run(main())


@app.command("secret-key")
def secret_key() -> None:
    """Print a new key for DESKBRIDGE_SECRET_KEY."""
    from bot.main import generate_key

    typer.echo(generate_key())


# ---------------------------------------------------------------- db


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all pending migrations."""
    from bot.main import migrate

    settings = settings_from_env()
    migrate.upgrade(settings.database_url)
    typer.echo("Database is up to date.")


@db_app.command("current")
def db_current() -> None:
    """Show the applied and the latest schema revisions."""
    from bot.main import migrate

    url = settings_from_env().database_url
    typer.echo(f"applied: {', '.join(sorted(migrate.database_heads(url))) or '(none)'}")
    typer.echo(f"latest:  {', '.join(sorted(migrate.script_heads(url)))}")


# ---------------------------------------------------------------- workspaces


@ws_app.command("create")
def ws_create(slug: str, name: str = typer.Option(..., help="Display name"),
              timezone: str = typer.Option("UTC", help="IANA time zone")) -> None:
    """Create a workspace."""
    ws = run(lambda c: c.workspaces.create(slug=slug, name=name, timezone=timezone))
    typer.echo(f"Created workspace '{ws.slug}' (id {ws.id}).")


@ws_app.command("list")
def ws_list() -> None:
    """List workspaces."""
    for ws in run(lambda c: c.workspaces.list()):
        typer.echo(f"{ws.id:>4}  {ws.slug:<24} {ws.name}  ({ws.timezone})")


@ws_app.command("set")
def ws_set(key: str, value: str, workspace: str | None = typer.Option(None, help="Workspace slug")) -> None:
    """Change a workspace setting, e.g. `first_reply_moves_to_in_progress on` or
    `rmm_device_url 'https://rmm.example.com/devices/{ref}'` (`off` clears a link)."""

    async def work(c: Deskbridge) -> dict[str, Any]:
        return await c.workspaces.set_option(await workspace_id(c, workspace), key, value)

    echo_json(run(work))


@ws_app.command("admin")
def ws_admin(email: str = typer.Argument(..., help="The technician's e-mail"),
             off: bool = typer.Option(False, "--off", help="Remove admin rights instead"),
             workspace: str | None = typer.Option(None, help="Workspace slug")) -> None:
    """Make a technician a Deskbridge admin (bind channels, redrive writes, change settings from chat).
    Until a workspace has one, the chat platform's own workspace admins act as Deskbridge admins."""

    async def work(c: Deskbridge) -> Any:
        m = await c.directory.set_admin(await workspace_id(c, workspace), email, not off)
        return {"member": m.name, "email": m.email, "is_admin": m.is_admin}

    echo_json(run(work))


@ws_app.command("settings")
def ws_settings(workspace: str | None = typer.Option(None, help="Workspace slug")) -> None:
    """Show every workspace setting (defaults included)."""

    async def work(c: Deskbridge) -> dict[str, Any]:
        return await c.workspaces.settings(await workspace_id(c, workspace))

    for key, value in run(work).items():
        typer.echo(f"{key:<34} {'(not set)' if value is None else value}")


@ws_app.command("allow-team")
def ws_allow_team(platform: str = typer.Argument(..., help="slack"), team_id: str = typer.Argument(..., help="e.g. T0123"),
                  workspace: str | None = typer.Option(None, help="Workspace slug")) -> None:
    """Reserve a Slack team for this workspace before it installs the app over OAuth.

    Without this, a team installing over OAuth gets a new, empty workspace of its own.
    """

    async def work(c: Deskbridge) -> Any:
        return await c.chat.preauthorize(platform, team_id.strip(), await workspace_id(c, workspace))

    inst = run(work)
    typer.echo(f"{platform} team {inst.team_id} will install into workspace {inst.workspace_id}.")


# ---------------------------------------------------------------- connections


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, val = item.partition("=")
        if not key.strip():
            raise fail(f"--{what} '{item}' has no name.", f"Write --{what} name=value.")
        if not sep:
            if what == "secret":
                env = f"DESKBRIDGE_PSA_{key.strip().upper()}"
                val = os.environ.get(env) or typer.prompt(f"{key}", hide_input=True)
            else:
                raise fail(f"--{what} '{item}' has no value.", f"Write --{what} {key}=value.")
        out[key.strip()] = val
    return out


@conn_app.command("add")
def conn_add(
    kind: str = typer.Argument(..., help="connectwise, sandbox, …"),
    name: str = typer.Option(..., help="A name for this connection"),
    setting: list[str] = typer.Option([], "--set", help="Non-secret setting name=value (repeatable)"),
    secret: list[str] = typer.Option(
        [], "--secret", help="Credential name=value, or just the name to be prompted (or read from "
        "DESKBRIDGE_PSA_<NAME>)"),
    default: bool = typer.Option(True, help="Make it the workspace's default PSA"),
    workspace: str | None = typer.Option(None, help="Workspace slug"),
) -> None:
    """Add a PSA connection; the credentials are checked against the PSA before they are saved."""
    settings_map, secrets_map = _pairs(setting, "set"), _pairs(secret, "secret")

    async def work(c: Deskbridge) -> Any:
        ws = await workspace_id(c, workspace)
        return await c.connections.add(ws, kind=kind, name=name, settings=settings_map, credentials=secrets_map,
                                       make_default=default)

    conn, info = run(work)
    typer.echo(f"Connected to {info.display_name}. Saved connection '{conn.name}' (id {conn.id}).")


@conn_app.command("list")
def conn_list(workspace: str | None = typer.Option(None, help="Workspace slug")) -> None:
    """List PSA connections (never their credentials)."""

    async def work(c: Deskbridge) -> Any:
        return await c.connections.list(await workspace_id(c, workspace))

    for conn in run(work):
        flags = " ".join(f for f, on in (("default", conn.is_default), ("disabled", not conn.enabled)) if on)
        typer.echo(f"{conn.id:>4}  {conn.name:<20} {conn.kind:<12} {flags}")


@conn_app.command("check")
def conn_check(name: str, workspace: str | None = typer.Option(None, help="Workspace slug")) -> None:
    """Check a saved connection's credentials against its PSA."""

    async def work(c: Deskbridge) -> Any:
        conn = await c.connections.by_name(await workspace_id(c, workspace), name)
        cfg = c.connections.config_for(conn)
        from core.errors import ConnectionProblem

        try:
            return await c.registry.check(conn.kind, cfg.settings, cfg.credentials)
        except Exception as exc:  # PsaError from the connector
            raise ConnectionProblem(f"{name}: {exc}", hint="Re-enter the keys with `connection reauth`.") from exc

    info = run(work)
    typer.echo(f"OK: {info.display_name}")


@conn_app.command("reauth")
def conn_reauth(
    name: str,
    secret: list[str] = typer.Option([], "--secret", help="Credential name=value (or name to be prompted)"),
    workspace: str | None = typer.Option(None, help="Workspace slug"),
) -> None:
    """Replace a connection's credentials in place (checked first); tickets and mappings stay."""
    secrets_map = _pairs(secret, "secret")

    async def work(c: Deskbridge) -> Any:
        ws = await workspace_id(c, workspace)
        conn = await c.connections.by_name(ws, name)
        return await c.connections.reauth(ws, conn.id, secrets_map)  # type: ignore[arg-type]

    info = run(work)
    typer.echo(f"Credentials updated: {info.display_name}")


# ---------------------------------------------------------------- feature commands (bot/commands/)

from bot.commands.apikey import app as apikey_app  # noqa: E402

app.add_typer(apikey_app, name="apikey")
from bot.commands.console import app as console_app  # noqa: E402

app.add_typer(console_app, name="console")
from bot.commands.outbox import app as outbox_app  # noqa: E402

app.add_typer(outbox_app, name="outbox")
from bot.commands import sync as sync_commands  # noqa: E402

app.add_typer(sync_commands.app, name="sync")
sync_commands.register_connection_commands(conn_app)

from bot.commands.sla import app as sla_app  # noqa: E402

app.add_typer(sla_app, name="sla")
from bot.commands.rmm import app as rmm_app  # noqa: E402

app.add_typer(rmm_app, name="rmm")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
