"""Scheduler wiring only (APScheduler 3.x). Each job body is a core/ call; each tick is claimed in the
database first (core/scheduling.py), so with several instances every tick runs exactly once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot import gctune
from core import scheduling

if TYPE_CHECKING:
    from bot.main import Deskbridge

log = logging.getLogger("deskbridge.jobs")

JobBody = Callable[[], Awaitable[object]]


def claimed(container: Deskbridge, name: str, every: timedelta, body: JobBody) -> Callable[[], Awaitable[None]]:
    """Wrap a job body so that only the instance that claims the period's tick runs it."""

    async def run() -> None:
        start = scheduling.period_start(datetime.now(UTC), every)
        if not await scheduling.claim_tick(container.db, name, start, container.settings.instance_id):
            return
        try:
            await body()
        except asyncio.CancelledError:  # shutdown (Ctrl-C) mid-job: one line, not a traceback from the scheduler
            log.info("scheduled job stopped by shutdown", extra={"job": name})
        except Exception:
            log.exception("scheduled job failed", extra={"job": name})
        finally:
            await scheduling.finish_tick(container.db, name, start)

    return run


def add_job(scheduler: AsyncIOScheduler, container: Deskbridge, name: str, every: timedelta,
            body: JobBody, *, jitter: int | None = None) -> None:
    scheduler.add_job(claimed(container, name, every, body), "interval", seconds=every.total_seconds(), id=name,
                      name=name, replace_existing=True, coalesce=True, max_instances=1, misfire_grace_time=30,
                      jitter=jitter, next_run_time=datetime.now(UTC) + timedelta(seconds=2))


def build_scheduler(container: Deskbridge) -> AsyncIOScheduler:
    """The jobs of this instance; feature modules register theirs here."""
    scheduler = AsyncIOScheduler(timezone=UTC)

    async def housekeeping() -> None:
        await scheduling.prune(container.db, datetime.now(UTC))
        await container.idempotency.prune(datetime.now(UTC))  # REST API idempotency keys older than 24 h

    add_job(scheduler, container, "housekeeping", timedelta(hours=1), housekeeping)
    # SLA clocks and threshold warnings, each minute
    add_job(scheduler, container, "sla_monitor", timedelta(minutes=1), container.sla_monitor.sweep)
    # Intake: new mail of every configured mailbox; alert events a crashed processor left half applied
    add_job(scheduler, container, "mail_poll", timedelta(minutes=1), container.mailboxes.poll_all)
    add_job(scheduler, container, "alert_sweep", timedelta(minutes=1), container.alert_intake.sweep)
    # AI categorisation models follow each workspace's closed tickets (training runs in a worker thread).
    add_job(scheduler, container, "ai_retrain", timedelta(hours=6), container.ai.retrain_due)
    # ...and apply categories to open tickets where the admin turned auto-apply on (through the outbox).
    add_job(scheduler, container, "ai_categorise", timedelta(minutes=2), container.ai.auto_categorise_all)
    # Escalation risk: a model per workspace every 6 h; open tickets scored each minute (changed ones, and
    # every ticket again after 10 minutes as its time since the last update grows).
    add_job(scheduler, container, "ai_risk_train", timedelta(hours=6), container.ai.risk.train_due)
    add_job(scheduler, container, "ai_risk_score", timedelta(minutes=1), container.ai.risk.score_all)
    # KB linking: the connected documentation platforms' articles, re-read hourly (a failing one keeps its own).
    add_job(scheduler, container, "ai_kb_refresh", timedelta(hours=1), container.ai.kb.refresh_all)
    register_sync(scheduler, container)
    return scheduler


# ---------------------------------------------------------------- sync

SYNC_JOB_PREFIXES = ("sync:", "picklists:", "reconcile:")


def add_sync_jobs(scheduler: AsyncIOScheduler, container: Deskbridge, connection_id: int, *,
                  every: timedelta | None = None, picklists_every: timedelta | None = None,
                  reconcile_every: timedelta | None = None) -> None:
    """Incremental sync, picklist refresh and full reconcile of one connection (ticks claimed in the DB;
    the run itself holds the connection's lease, so a long sync never runs twice)."""
    s = container.settings
    sync = container.sync
    first_sync: JobBody = lambda: sync.run(connection_id)  # noqa: E731
    if container.settle_gc:  # a long-running server: freeze what the first sync loaded
        first_sync = gctune.after_first(first_sync)
    plan = (("sync", every or timedelta(seconds=s.sync_interval_seconds), first_sync),
            ("picklists", picklists_every or timedelta(seconds=s.picklist_interval_seconds),
             lambda: sync.refresh_picklists(connection_id)),
            ("reconcile", reconcile_every or timedelta(seconds=s.reconcile_interval_seconds),
             lambda: sync.reconcile(connection_id)))
    for kind, period, body in plan:
        jitter = max(1, int(period.total_seconds() * 0.1))
        add_job(scheduler, container, f"{kind}:{connection_id}", period, body, jitter=jitter)


def register_sync(scheduler: AsyncIOScheduler, container: Deskbridge) -> None:
    """Keep one set of sync jobs per enabled connection (connections added later are picked up)."""

    async def refresh_jobs() -> None:
        conns = await container.connections.all_enabled()
        wanted = {c.id for c in conns}
        for conn in conns:
            if conn.id is not None and scheduler.get_job(f"sync:{conn.id}") is None:
                add_sync_jobs(scheduler, container, conn.id)
        for job in scheduler.get_jobs():
            prefix, _, cid = job.id.partition(":")
            if f"{prefix}:" in SYNC_JOB_PREFIXES and cid.isdigit() and int(cid) not in wanted:
                job.remove()

    scheduler.add_job(refresh_jobs, "interval", seconds=60, id="sync-jobs", name="sync-jobs",
                      replace_existing=True, coalesce=True, max_instances=1,
                      next_run_time=datetime.now(UTC) + timedelta(seconds=1))
