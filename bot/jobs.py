"""Scheduler wiring only (APScheduler 3.x). Each job body is a core/ call; each tick is claimed in the
database first (core/scheduling.py), so with several instances every tick runs exactly once."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler

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
    return scheduler
