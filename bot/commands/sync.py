"""`deskbridge sync run|status|picklists|reconcile` and `deskbridge connection map-status|map-priority|mappings`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer

app = typer.Typer(help="PSA ticket sync: run it now, see its status.", no_args_is_help=True)

STAGES = "new, in_progress, waiting, resolved, closed"


def _cli() -> Any:
    from bot import cli  # late: bot.cli registers this module at its bottom

    return cli


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "never"


def _lag(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


async def _connection(c: Any, workspace: str | None, name: str) -> tuple[int, Any]:
    ws = await _cli().workspace_id(c, workspace)
    return ws, await c.connections.by_name(ws, name)


def _report(outcome: Any) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(outcome.counts.items()) if v)
    typer.echo(f"{outcome.status}: {counts or 'nothing to do'}")
    if outcome.error:
        typer.secho(f"  {outcome.error}", fg=typer.colors.YELLOW if outcome.ok else typer.colors.RED, err=True)
    if not outcome.ok and outcome.status != "skipped":
        raise typer.Exit(1)


@app.command("run")
def run_sync(
    connection: str = typer.Argument(..., help="Connection name (see `deskbridge connection list`)"),
    full: bool = typer.Option(False, "--full", help="Re-read every ticket, not only those changed since the cursor"),
    workspace: str | None = typer.Option(None, help="Workspace slug"),
    progress: bool = typer.Option(True, help="Show a progress bar"),
) -> None:
    """Sync a connection's tickets now (incremental unless --full)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    async def work(c: Any) -> Any:
        _, conn = await _connection(c, workspace, connection)
        if not progress:
            return await c.sync.run(conn.id, full=full)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      transient=True) as bar:
            task = bar.add_task(f"{conn.name}: listing changed tickets…", total=None)

            def show(p: Any) -> None:
                bar.update(task, description=f"{conn.name}: page {p.pages}, {p.seen:,} tickets read, "
                                             f"{p.changed:,} written")

            return await c.sync.run(conn.id, full=full, progress=show)

    _report(_cli().run(work))


@app.command("picklists")
def run_picklists(connection: str, workspace: str | None = typer.Option(None, help="Workspace slug")) -> None:
    """Refresh a connection's boards, statuses, priorities, types, members, companies and contacts now."""

    async def work(c: Any) -> Any:
        _, conn = await _connection(c, workspace, connection)
        return await c.sync.refresh_picklists(conn.id)

    _report(_cli().run(work))


@app.command("reconcile")
def run_reconcile(connection: str, workspace: str | None = typer.Option(None, help="Workspace slug")) -> None:
    """Compare every PSA ticket id with ours: mark deleted/merged tickets (guarded), fetch missing ones."""

    async def work(c: Any) -> Any:
        _, conn = await _connection(c, workspace, connection)
        return await c.sync.reconcile(conn.id)

    _report(_cli().run(work))


@app.command("status")
def status(workspace: str | None = typer.Option(None, help="Workspace slug"),
           runs: int = typer.Option(5, help="Recent runs shown per connection")) -> None:
    """Per connection: last successful sync, lag, watermark, last error and recent runs."""

    async def work(c: Any) -> Any:
        ws = await _cli().workspace_id(c, workspace)
        return await c.sync.status(ws)

    rows = _cli().run(work)
    if not rows:
        typer.echo("No PSA connections. Add one with `deskbridge connection add`.")
    for st in rows:
        flag = "" if st.enabled else " (disabled)"
        typer.echo(f"{st.connection_name} [{st.kind}]{flag}: last sync {_when(st.last_ok_at)}, lag {_lag(st.lag_s)}, "
                   f"watermark {_when(st.watermark)}")
        if st.last_error:
            typer.secho(f"  last error: {st.last_error[:300]}", fg=typer.colors.YELLOW)
        for r in st.runs[:runs]:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(r.counts.items())
                               if v and k in ("seen", "created", "updated", "bad", "deleted", "notes_added"))
            typer.echo(f"  {_when(r.started_at)}  {r.kind:<11} {r.status:<8} {counts}")


# ---------------------------------------------------------------- connection map-status / map-priority


def register_connection_commands(conn_app: typer.Typer) -> None:
    """Add the mapping admin commands to `deskbridge connection`."""

    @conn_app.command("map-status")
    def map_status(
        connection: str = typer.Argument(..., help="Connection name"),
        psa_status: str = typer.Argument(..., help="The PSA's status name (or id), e.g. \"Waiting Customer\""),
        stage: str = typer.Argument(..., help=f"One of: {STAGES}"),
        board: str | None = typer.Option(None, help="Only this board (name or id); default: every board"),
        workspace: str | None = typer.Option(None, help="Workspace slug"),
    ) -> None:
        """Map a PSA status to a stage (sync never changes an admin's mapping)."""

        async def work(c: Any) -> Any:
            ws, conn = await _connection(c, workspace, connection)
            return await c.sync.map_status(ws, conn.id, psa_status, stage, board)

        for ch in _cli().run(work):
            where = f" (board {ch.board})" if ch.board else ""
            typer.echo(f"'{ch.psa_name}'{where} -> {ch.value}; {ch.tickets_updated} ticket(s) updated")

    @conn_app.command("map-priority")
    def map_priority(
        connection: str = typer.Argument(..., help="Connection name"),
        psa_priority: str = typer.Argument(..., help="The PSA's priority name (or id)"),
        priority: str = typer.Argument(..., help="critical, high, medium or low"),
        workspace: str | None = typer.Option(None, help="Workspace slug"),
    ) -> None:
        """Map a PSA priority to Critical/High/Medium/Low (sync never changes an admin's mapping)."""

        async def work(c: Any) -> Any:
            ws, conn = await _connection(c, workspace, connection)
            return await c.sync.map_priority(ws, conn.id, psa_priority, priority)

        ch = _cli().run(work)
        typer.echo(f"'{ch.psa_name}' -> {ch.value}; {ch.tickets_updated} ticket(s) updated")

    @conn_app.command("mappings")
    def mappings(connection: str, workspace: str | None = typer.Option(None, help="Workspace slug")) -> None:
        """Show a connection's status and priority mappings (* = set by an admin)."""

        async def work(c: Any) -> Any:
            ws, conn = await _connection(c, workspace, connection)
            return await c.sync.mappings.list(ws, conn.id)

        statuses, priorities = _cli().run(work)
        for m in statuses:
            board = f"[board {m.board_external_id}] " if m.board_external_id else ""
            typer.echo(f"status   {board}{m.psa_status_name:<30} -> {m.stage}{' *' if m.overridden else ''}")
        for p in priorities:
            typer.echo(f"priority {p.psa_priority_name:<30} -> {p.priority}{' *' if p.overridden else ''}")
