"""`deskbridge outbox list|show|retry|discard|work`: dead letters and the outbox worker."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import typer

app = typer.Typer(help="PSA write-back outbox: inspect, retry or discard writes; run workers.",
                  no_args_is_help=True)


def _cli() -> Any:
    from bot import cli  # late: bot.cli registers this module at its bottom

    return cli


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def _line(v: Any) -> str:
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
    workspace: str | None = typer.Option(None, help="Workspace slug"),
    as_json: bool = typer.Option(False, "--json", help="JSON output"),
) -> None:
    """List outbox writes (by default the dead ones and those blocked behind them), newest first."""
    cli = _cli()

    async def work(c: Any) -> Any:
        ws = await cli.workspace_id(c, workspace)
        return await c.outbox_admin.list_ops(ws, status=status, limit=limit, cursor=cursor), \
            await c.outbox_admin.counts(ws)

    page, counts = cli.run(work)
    if as_json:
        cli.echo_json({"items": [_asdict(v) for v in page.items], "next_cursor": page.next_cursor, "counts": counts})
        return
    typer.echo("  ".join(f"{k}: {n}" for k, n in counts.items()))
    if not page.items:
        typer.echo(f"No writes with status {status}.")
    for v in page.items:
        typer.echo(_line(v))
    if page.next_cursor:
        typer.echo(f"More: --cursor {page.next_cursor}")


@app.command("show")
def show(op_id: int, workspace: str | None = typer.Option(None, help="Workspace slug"),
         as_json: bool = typer.Option(False, "--json", help="JSON output")) -> None:
    """One write, with every attempt from the audit log."""
    cli = _cli()

    async def work(c: Any) -> Any:
        return await c.outbox_admin.get_op(await cli.workspace_id(c, workspace), op_id)

    detail = cli.run(work)
    if as_json:
        cli.echo_json({"op": _asdict(detail.op), "audit": [_asdict(a) for a in detail.audit]})
        return
    v = detail.op
    typer.echo(_line(v))
    typer.echo(f"  marker {v.marker}  by {v.actor}  created {_when(v.created_at)}  connection {v.connection_id}")
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
    workspace: str | None = typer.Option(None, help="Workspace slug"),
) -> None:
    """Send a dead write back to the PSA (same dedupe marker; writes blocked behind it follow)."""
    cli = _cli()
    if op_id is None and not all_dead:
        raise cli.fail("Name the write to retry, or pass --all-dead.", "List them with `deskbridge outbox list`.")

    async def work(c: Any) -> Any:
        ws = await cli.workspace_id(c, workspace)
        if all_dead:
            return await c.outbox_admin.redrive_all(ws, c.system_actor())
        return await c.outbox_admin.redrive(ws, op_id, c.system_actor())

    out = cli.run(work)
    typer.echo(f"Queued {out} dead writes again." if all_dead else f"Queued write {out.id} again ({out.kind}).")


@app.command("discard")
def discard(op_id: int, reason: str = typer.Option(..., help="Why it is dropped (kept in the audit log)"),
            workspace: str | None = typer.Option(None, help="Workspace slug")) -> None:
    """Drop a dead (or waiting) write for good, with a reason; writes blocked behind it go ahead."""
    cli = _cli()

    async def work(c: Any) -> Any:
        return await c.outbox_admin.discard(await cli.workspace_id(c, workspace), op_id, c.system_actor(), reason)

    out = cli.run(work)
    typer.echo(f"Discarded write {out.id} ({out.kind}).")


@app.command("work")
def work_cmd(
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit"),
    concurrency: int | None = typer.Option(None, help="Delivery slots (default DESKBRIDGE_OUTBOX_CONCURRENCY)"),
) -> None:
    """Run an outbox worker in this process (any number of them may run; SIGTERM stops it gracefully)."""
    from bot import logging as dlog
    from bot.main import build, migrate, outbox_worker_config, settings_from_env
    from core.outbox.worker import OutboxWorker

    settings = settings_from_env()
    dlog.configure(settings.log_level, settings.log_format)

    async def main() -> int:
        if settings.auto_migrate:
            await asyncio.to_thread(migrate.upgrade, settings.database_url)
        c = build(settings)
        cfg = outbox_worker_config(settings, **({"concurrency": concurrency} if concurrency else {}))
        worker = OutboxWorker(c.db, c.connections, c.notifier, config=cfg, name=settings.instance_id)
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


def _asdict(view: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(view)
