"""`deskbridge outbox list|show|retry|discard|work`: dead letters and the outbox worker."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import asdict
from datetime import datetime

import typer

from bot import logging as dlog
from bot.cli.common import WORKSPACE, cli_actor, echo_json, fail, run_in
from bot.main import Deskbridge, build, migrate, outbox_worker_config, settings_from_env
from core.outbox.views import OutboxOpView, OutboxPage
from core.outbox.worker import OutboxWorker

app = typer.Typer(help="PSA write-back outbox: inspect, retry or discard writes; run workers.",
                  no_args_is_help=True)


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def _line(v: OutboxOpView) -> str:
    ticket = f"#{v.ticket_number}" if v.ticket_number is not None else (f"t{v.ticket_id}" if v.ticket_id else "-")
    said = v.last_error if v.status == "dead" else (v.why or v.last_error)  # what failed / why it waits
    err = f"  {(said or '')[:100]}" if v.status in ("dead", "pending", "blocked") else ""
    return (f"{v.id:>6}  {v.status:<9} {v.kind:<18} {ticket:<9} {v.attempts}/{v.max_attempts}  "
            f"{_when(v.next_attempt_at) if v.status == 'pending' else _when(v.updated_at)}{err}")


@app.command("list")
def list_ops(
    status: str | None = typer.Option("dead,blocked", help="Status or comma list (pending, inflight, done, dead, "
                                      "blocked, discarded), or 'all'"),
    limit: int = typer.Option(50, help="Rows per page (max 200)"),
    cursor: str | None = typer.Option(None, help="Next-page cursor printed by the previous page"),
    workspace: str | None = WORKSPACE,
    as_json: bool = typer.Option(False, "--json", help="JSON output"),
) -> None:
    """List outbox writes (by default the dead ones and those blocked behind them), newest first."""

    async def work(c: Deskbridge, ws: int) -> tuple[OutboxPage, dict[str, int]]:
        return await c.outbox_admin.list_ops(ws, status=status, limit=limit, cursor=cursor), \
            await c.outbox_admin.counts(ws)

    page, counts = run_in(workspace, work)
    if as_json:
        echo_json({"items": [asdict(v) for v in page.items], "next_cursor": page.next_cursor, "counts": counts})
        return
    typer.echo("  ".join(f"{k}: {n}" for k, n in counts.items()))
    if not page.items:
        typer.echo(f"No writes with status {status}.")
    for v in page.items:
        typer.echo(_line(v))
    if page.next_cursor:
        typer.echo(f"More: --cursor {page.next_cursor}")


@app.command("show")
def show(op_id: int, workspace: str | None = WORKSPACE,
         as_json: bool = typer.Option(False, "--json", help="JSON output")) -> None:
    """One write, with every attempt from the audit log."""
    detail = run_in(workspace, lambda c, ws: c.outbox_admin.get_op(ws, op_id))
    if as_json:
        echo_json({"op": asdict(detail.op), "audit": [asdict(a) for a in detail.audit]})
        return
    v = detail.op
    typer.echo(_line(v))
    typer.echo(f"  marker {v.marker}  by {v.actor}  created {_when(v.created_at)}  "
               + (f"connection {v.connection_id}" if v.connection_id is not None else "no PSA connection"))
    if v.last_error:
        typer.echo(f"  last error: {v.last_error}")
    if v.why:
        typer.echo(f"  {v.why}")
    for a in detail.audit:
        status = a.response_status if a.response_status is not None else "-"
        dur = f"{a.duration_ms}ms" if a.duration_ms is not None else ""
        typer.echo(f"  {_when(a.created_at)}  #{a.attempt:<2} {a.outcome:<10} {a.action:<18} {status!s:<4} {dur:<7}"
                   f" {a.actor}" + (f"  {a.error[:120]}" if a.error else ""))


@app.command("retry")
def retry(
    op_id: int | None = typer.Argument(None, help="The write to retry"),
    all_dead: bool = typer.Option(False, "--all-dead", help="Retry every dead write (e.g. after re-entering keys)"),
    workspace: str | None = WORKSPACE,
) -> None:
    """Send a dead write back to the PSA (same dedupe marker; writes blocked behind it follow)."""
    if all_dead:
        n = run_in(workspace, lambda c, ws: c.outbox_admin.redrive_all(ws, cli_actor(ws)))
        typer.echo(f"Queued {n} dead writes again.")
        return
    if op_id is None:
        raise fail("Name the write to retry, or pass --all-dead.", "List them with `deskbridge outbox list`.")
    one = op_id
    out = run_in(workspace, lambda c, ws: c.outbox_admin.redrive(ws, one, cli_actor(ws)))
    typer.echo(f"Queued write {out.id} again ({out.kind}).")


@app.command("discard")
def discard(op_id: int, reason: str = typer.Option(..., help="Why it is dropped (kept in the audit log)"),
            workspace: str | None = WORKSPACE) -> None:
    """Drop a dead (or waiting) write for good, with a reason; writes blocked behind it go ahead."""
    out = run_in(workspace, lambda c, ws: c.outbox_admin.discard(ws, op_id, cli_actor(ws), reason))
    typer.echo(f"Discarded write {out.id} ({out.kind}).")


@app.command("work")
def work_cmd(
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit"),
    concurrency: int | None = typer.Option(None, help="Delivery slots (default DESKBRIDGE_OUTBOX_CONCURRENCY)"),
) -> None:
    """Run an outbox worker in this process (any number of them may run; SIGTERM stops it gracefully)."""
    settings = settings_from_env()
    dlog.configure(settings.log_level, settings.log_format, levels=settings.log_levels)

    async def main() -> int:
        if settings.auto_migrate:
            await asyncio.to_thread(migrate.upgrade, settings.database_url)
        c = build(settings)
        cfg = outbox_worker_config(settings, concurrency=concurrency)
        worker = OutboxWorker(c.db, c.connections, c.notifier, config=cfg, name=settings.instance_id,
                              alerts=c.alert_webhooks,  # alert actions go to the MSP's webhook from here too
                              tenant=c.outbox_worker.tenant)  # and Microsoft 365 quick actions to Graph
        try:
            if once:
                n = await worker.drain()
                await worker.aclose()
                return n
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, worker.stop)
            await worker.run()
            return worker.processed
        finally:
            await c.aclose()

    n = asyncio.run(main())
    typer.echo(f"Outbox worker done: {n} attempts recorded.")
