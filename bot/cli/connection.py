"""`deskbridge connection add|list|check|reauth|callbacks|map-status|map-priority|mappings|card-fields`: PSA
connections, how their statuses and priorities map to ours, and which PSA fields cards show."""

from __future__ import annotations

import os

import typer

from bot.cli.common import WORKSPACE, cli_actor, fail, run, run_in, run_on, workspace_id
from bot.main import Deskbridge
from core import card_fields, connection_report
from core.connection_report import ConnectionReport
from core.connections import CallbackSetup
from core.errors import ConnectionProblem, DeskbridgeError

app = typer.Typer(help="PSA connections.", no_args_is_help=True)

STAGES = "new, in_progress, waiting, resolved, closed"


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


@app.command("add")
def conn_add(
    kind: str = typer.Argument(..., help="connectwise, sandbox, …"),
    name: str = typer.Option(..., help="A name for this connection"),
    setting: list[str] = typer.Option([], "--set", help="Non-secret setting name=value (repeatable)"),
    secret: list[str] = typer.Option(
        [], "--secret", help="Credential name=value, or just the name to be prompted (or read from "
        "DESKBRIDGE_PSA_<NAME>)"),
    default: bool = typer.Option(True, help="Make it the workspace's default PSA"),
    workspace: str | None = WORKSPACE,
) -> None:
    """Add a PSA connection; the credentials are checked against the PSA before they are saved."""
    settings_map, secrets_map = _pairs(setting, "set"), _pairs(secret, "secret")

    async def work(c: Deskbridge, ws: int) -> tuple[str, str]:
        conn, info = await c.connections.add(ws, kind=kind, name=name, settings=settings_map,
                                             credentials=secrets_map, make_default=default, actor=cli_actor(ws))
        saved = f"Connected to {info.display_name}. Saved connection '{conn.name}' (id {conn.id})."
        return saved, await _callbacks_after_add(c, ws, conn.id)  # type: ignore[arg-type]

    saved, callbacks = run_in(workspace, work)
    typer.echo(saved)
    if callbacks:
        typer.echo(callbacks)


async def _callbacks_after_add(c: Deskbridge, ws: int, connection_id: int) -> str:
    """With a public URL, the PSA's callbacks are registered at once; otherwise (or if that fails) the admin
    is told how. A failure here never undoes the saved connection: the scheduled sync works without them."""
    if not c.settings.public_url:
        return ("PSA callbacks are not registered (no DESKBRIDGE_PUBLIC_URL): changes arrive with each sync. "
                "Set it and run `deskbridge connection callbacks <name>` for changes within seconds.")
    try:
        setup = await c.connections.install_callbacks(ws, connection_id, c.settings.public_url, actor=cli_actor(ws))
    except DeskbridgeError as exc:
        return f"PSA callbacks were not registered: {exc.message} {exc.hint or ''}".strip()
    return _callbacks_text(setup)


def _callbacks_text(setup: CallbackSetup) -> str:
    if not setup.registered:
        return f"This PSA's callbacks are set up in the PSA itself: point them at {setup.url}"
    ch = setup.changes
    return (f"PSA callbacks point at {setup.url} ({len(ch.get('added', []))} added, {len(ch.get('kept', []))} kept, "
            f"{len(ch.get('deleted', []))} stale removed).")


@app.command("callbacks")
def conn_callbacks(name: str, workspace: str | None = WORKSPACE) -> None:
    """Register the PSA's callbacks (webhooks) to this Deskbridge, one per type, removing stale ones."""
    setup = run_on(name, workspace, lambda c, ws, cid: c.connections.install_callbacks(
        ws, cid, c.settings.public_url, actor=cli_actor(ws)))
    typer.echo(_callbacks_text(setup))


@app.command("show")
def conn_show(name: str, workspace: str | None = WORKSPACE) -> None:
    """One connection: settings (never a secret), credential names, its last sync runs, and what the MSP must
    configure in the PSA."""

    async def work(c: Deskbridge) -> ConnectionReport:
        ws = await workspace_id(c, workspace)
        kind = (await c.connections.by_name(ws, name)).kind
        return await connection_report.describe(c.db, c.connections, ws, name, c.registry.admin_notes(kind))

    r = run(work)
    flags = ", ".join(f for f, on in (("default", r.default), ("disabled", not r.enabled)) if on)
    typer.echo(f"{r.name} ({r.kind}, id {r.id}{', ' + flags if flags else ''}); tickets named {r.ticket_prefix}-<id> "
               "where a workspace has several PSAs")
    for k, v in r.settings.items():
        typer.echo(f"  {k} = {v}")
    typer.echo(f"  credentials: {', '.join(r.credential_names) or 'none'} (stored encrypted; values never shown)")
    if not r.runs:
        typer.echo("  no sync has run yet (it starts with `deskbridge serve`, or run `deskbridge sync run`)")
    for run_line in r.runs:
        when = run_line.finished_at or run_line.started_at
        err = f": {run_line.error.splitlines()[0][:160]}" if run_line.error else ""
        typer.echo(f"  last {run_line.kind}: {run_line.status} at {when:%Y-%m-%d %H:%M} UTC{err}")
    for note in r.notes:
        typer.echo(f"  note: {note}")


@app.command("list")
def conn_list(workspace: str | None = WORKSPACE) -> None:
    """List PSA connections (never their credentials)."""
    for conn in run_in(workspace, lambda c, ws: c.connections.list(ws)):
        flags = " ".join(f for f, on in (("default", conn.is_default), ("disabled", not conn.enabled)) if on)
        typer.echo(f"{conn.id:>4}  {conn.name:<20} {conn.kind:<12} {flags}")


@app.command("check")
def conn_check(name: str, workspace: str | None = WORKSPACE) -> None:
    """Check a saved connection's credentials against its PSA."""

    async def work(c: Deskbridge) -> str:
        conn = await c.connections.by_name(await workspace_id(c, workspace), name)
        cfg = c.connections.config_for(conn)
        try:
            info = await c.registry.check(conn.kind, cfg.settings, cfg.credentials)
        except Exception as exc:  # PsaError from the connector
            raise ConnectionProblem(f"{name}: {exc}", hint="Re-enter the keys with `connection reauth`.") from exc
        return info.display_name

    typer.echo(f"OK: {run(work)}")


@app.command("reauth")
def conn_reauth(
    name: str,
    secret: list[str] = typer.Option([], "--secret", help="Credential name=value (or name to be prompted)"),
    workspace: str | None = WORKSPACE,
) -> None:
    """Replace a connection's credentials in place (checked first); tickets and mappings stay."""
    secrets_map = _pairs(secret, "secret")
    info = run_on(name, workspace, lambda c, ws, cid: c.connections.reauth(ws, cid, secrets_map, actor=cli_actor(ws)))
    typer.echo(f"Credentials updated: {info.display_name}")


@app.command("map-status")
def map_status(
    connection: str = typer.Argument(..., help="Connection name"),
    psa_status: str = typer.Argument(..., help="The PSA's status name (or id), e.g. \"Waiting Customer\""),
    stage: str = typer.Argument(..., help=f"One of: {STAGES}"),
    board: str | None = typer.Option(None, help="Only this board (name or id); default: every board"),
    workspace: str | None = WORKSPACE,
) -> None:
    """Map a PSA status to a stage (sync never changes an admin's mapping)."""
    changes = run_on(connection, workspace, lambda c, ws, cid: c.sync.map_status(
        ws, cid, psa_status, stage, board, actor=cli_actor(ws)))
    for ch in changes:
        where = f" (board {ch.board})" if ch.board else ""
        typer.echo(f"'{ch.psa_name}'{where} -> {ch.value}; {ch.tickets_updated} ticket(s) updated")


@app.command("map-priority")
def map_priority(
    connection: str = typer.Argument(..., help="Connection name"),
    psa_priority: str = typer.Argument(..., help="The PSA's priority name (or id)"),
    priority: str = typer.Argument(..., help="critical, high, medium or low"),
    workspace: str | None = WORKSPACE,
) -> None:
    """Map a PSA priority to Critical/High/Medium/Low (sync never changes an admin's mapping)."""
    ch = run_on(connection, workspace, lambda c, ws, cid: c.sync.map_priority(
        ws, cid, psa_priority, priority, actor=cli_actor(ws)))
    typer.echo(f"'{ch.psa_name}' -> {ch.value}; {ch.tickets_updated} ticket(s) updated")


@app.command("mappings")
def mappings(connection: str, workspace: str | None = WORKSPACE) -> None:
    """Show a connection's status and priority mappings (* = set by an admin)."""
    statuses, priorities = run_on(connection, workspace, lambda c, ws, cid: c.sync.mappings.list(ws, cid))
    for m in statuses:
        board = f"[board {m.board_external_id}] " if m.board_external_id else ""
        typer.echo(f"status   {board}{m.psa_status_name:<30} -> {m.stage}{' *' if m.overridden else ''}")
    for p in priorities:
        typer.echo(f"priority {p.psa_priority_name:<30} -> {p.priority}{' *' if p.overridden else ''}")


@app.command("card-fields")
def conn_card_fields(
    connection: str = typer.Argument(..., help="Connection name"),
    fields: list[str] = typer.Argument(None, help="The PSA's ticket fields (Autotask UDF names), in card order"),
    clear: bool = typer.Option(False, "--clear", help="Show none of the PSA's own fields on cards"),
    workspace: str | None = WORKSPACE,
) -> None:
    """Choose which of the PSA's own ticket fields technicians see on ticket cards (never customers)."""
    if not fields and not clear:
        raise fail("Name the fields to show, or --clear to show none.",
                   "e.g. deskbridge connection card-fields autotask \"Customer PO\"")
    names = [] if clear else list(fields)
    stored = run_on(connection, workspace, lambda c, ws, cid: card_fields.set_card_fields(c.db, ws, cid, names))
    typer.echo(f"Cards show: {', '.join(stored)}" if stored else "Cards show none of the PSA's own fields.")
