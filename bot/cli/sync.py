"""`deskbridge sync run|picklists|reconcile|status`: PSA ticket sync (mappings: bot/cli/connection.py)."""

from __future__ import annotations

from datetime import datetime

import typer

from bot.cli.common import WORKSPACE, run_in, run_on
from bot.main import Deskbridge
from core.sync.engine import Progress
from core.sync.runs import SyncOutcome

app = typer.Typer(help="PSA ticket sync: run it now, see its status.", no_args_is_help=True)


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "never"


def _lag(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _report(outcome: SyncOutcome) -> None:
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
    workspace: str | None = WORKSPACE,
    progress: bool = typer.Option(True, help="Show a progress bar"),
) -> None:
    """Sync a connection's tickets now (incremental unless --full)."""
    from rich.progress import Progress as Bar
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    async def work(c: Deskbridge, ws: int, cid: int) -> SyncOutcome:
        if not progress:
            return await c.sync.run(cid, full=full)
        with Bar(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True) as bar:
            task = bar.add_task(f"{connection}: listing changed tickets…", total=None)

            def show(p: Progress) -> None:
                if p.phase == "history":
                    bar.update(task, description=f"{connection}: 2/2 history of open tickets "
                                                 f"{p.histories_done:,}/{p.histories_total:,} (queue ready)")
                else:
                    bar.update(task, description=f"{connection}: 1/2 tickets, page {p.pages}, {p.seen:,} read, "
                                                 f"{p.changed:,} written")

            return await c.sync.run(cid, full=full, progress=show)

    _report(run_on(connection, workspace, work))


@app.command("picklists")
def run_picklists(connection: str, workspace: str | None = WORKSPACE) -> None:
    """Refresh a connection's boards, statuses, priorities, types, members, companies and contacts now."""
    _report(run_on(connection, workspace, lambda c, ws, cid: c.sync.refresh_picklists(cid)))


@app.command("reconcile")
def run_reconcile(connection: str, workspace: str | None = WORKSPACE) -> None:
    """Compare every PSA ticket id with ours: mark deleted/merged tickets (guarded), fetch missing ones."""
    _report(run_on(connection, workspace, lambda c, ws, cid: c.sync.reconcile(cid)))


@app.command("status")
def status(workspace: str | None = WORKSPACE,
           runs: int = typer.Option(5, help="Recent runs shown per connection")) -> None:
    """Per connection: last successful sync, lag, watermark, last error and recent runs."""
    rows = run_in(workspace, lambda c, ws: c.sync.status(ws))
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
