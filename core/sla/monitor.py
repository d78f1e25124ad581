"""The SLA monitor: each minute, bring every open ticket's clocks up to date and post threshold warnings.

A minute is too coarse for a threshold (a 5-minute target crosses 75, 90 and 100 within two sweeps), so
each sweep also plans the thresholds due before the next one: for every running clock, the instant each
remaining threshold is reached (the breach instant exactly, on its calendar; earlier thresholds at the
earliest instant they can be reached, since business time never runs faster than wall time) and, at that
instant, re-evaluates only those tickets (`SlaTimers`). A re-check that finds the threshold not yet
reached (the calendar closed, the clock paused, the ticket answered) posts nothing; the next sweep plans
it again. Timers live in the instance that ran the sweep; if it dies, the next minute's sweep (on any
instance) still posts the warning, later.

Each warning is one row of `sla_warning` with UNIQUE(ticket, metric, cycle, threshold), inserted with
ON CONFLICT DO NOTHING ... RETURNING: only the instance whose insert created the row posts it, so a
re-run, an overlapping tick or a second instance never double-posts (reliability-sla.md §3.3, §5.4).
When a ticket jumps past several thresholds at once (first seen already late), every crossed row is
inserted but only the highest is posted.

Delivery is at most once: the row is committed before the Notifier is called, and Notifier
implementations log their own failures instead of raising (core/notify.py). A warning lost to a crash
between commit and post is not retried; the next threshold still posts.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import select

from core.notify import Notifier, SlaWarningEvent
from core.sla.service import ClockResult, SlaService, dt
from store.db import Database, Scope
from store.enums import Origin
from store.sql import dialect_insert
from store.tables import SlaWarning, Workspace
from store.types import utcnow

log = logging.getLogger(__name__)
CHUNK = 500
PLAN_AHEAD_S = 75.0  # thresholds reached before the next sweep (60 s) plus slack are timed precisely
WarnKey = tuple[int, str, int, int]  # ticket, metric, cycle, threshold


@dataclass
class SweepReport:
    workspaces: int = 0
    clocks: int = 0
    warnings_posted: int = 0
    seconds: float = 0.0
    posted: list[WarnKey] = field(default_factory=list)
    upcoming: list[tuple[float, int, int]] = field(default_factory=list)  # (epoch instant, workspace, ticket)


def used_pct(r: ClockResult) -> float:
    """Percent of the target used; exactly 100 once breached, just under 100 until then."""
    if r.figures.remaining <= 0:
        return 100.0
    return min(100.0 * r.figures.used / r.state.target_s, 99.999)


def crossed(results: Sequence[ClockResult]) -> dict[WarnKey, tuple[ClockResult, float]]:
    """Every (ticket, metric, cycle, threshold) reached by a clock that is still counting."""
    out: dict[WarnKey, tuple[ClockResult, float]] = {}
    for r in results:
        if r.state.stopped_at is not None or r.state.target_s <= 0:
            continue
        pct = used_pct(r)
        for th in r.policy.thresholds:
            if pct >= th:
                out[(r.ticket.id, r.metric.value, r.state.cycle, int(th))] = (r, pct)
    return out


def upcoming(results: Sequence[ClockResult], now: float, ahead: float = PLAN_AHEAD_S) -> list[tuple[float, int]]:
    """(instant, ticket) of every threshold not yet reached that may be reached within `ahead` seconds.

    The breach instant is the clock's own due instant (calendar-aware); for an earlier threshold the
    remaining business seconds are a lower bound on the wall seconds until it, so checking then is never
    late, only sometimes early (the re-check then posts nothing)."""
    out: list[tuple[float, int]] = []
    for r in results:
        st = r.state
        if st.stopped_at is not None or st.paused_since is not None or st.target_s <= 0:
            continue
        pct = used_pct(r)
        for th in r.policy.thresholds:
            if pct >= th:
                continue
            if th >= 100:
                at = r.figures.due
            else:
                at = now + (th / 100.0 * st.target_s - r.figures.used)
            if not math.isnan(at) and at <= now + ahead:
                out.append((max(at, now), r.ticket.id))
            break  # later thresholds come after this one; the re-check plans them
    return out


class SlaTimers:
    """One-shot re-checks at threshold instants (asyncio timers of this process)."""

    def __init__(self, check: Callable[[int, list[int], datetime], Awaitable[object]],
                 clock: Callable[[], datetime] = utcnow,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self._check = check
        self._clock = clock
        self._sleep = sleep  # tests pass one that moves with their clock
        self._planned: dict[tuple[int, int], float] = {}  # (workspace, ticket) -> instant planned
        self._tasks: set[asyncio.Task[None]] = set()

    def plan(self, items: Sequence[tuple[float, int, int]]) -> int:
        """Schedule a re-check per (instant, workspace, ticket); an equal or earlier plan is kept."""
        n = 0
        for at, ws, ticket in items:
            key = (ws, ticket)
            if key in self._planned and self._planned[key] <= at:
                continue
            self._planned[key] = at
            task = asyncio.get_running_loop().create_task(self._fire(at, ws, ticket))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            n += 1
        return n

    @property
    def pending(self) -> int:
        return len(self._planned)

    @property
    def running(self) -> int:
        """Timers not finished: waiting for their instant, or re-checking."""
        return len(self._tasks)

    async def _fire(self, at: float, ws: int, ticket: int) -> None:
        delay = at - self._clock().timestamp()
        if delay > 0:
            await self._sleep(delay + 0.05)  # just past the instant, so the threshold counts as reached
        if self._planned.get((ws, ticket)) != at:
            return  # superseded by an earlier plan, which has run
        del self._planned[(ws, ticket)]
        try:
            await self._check(ws, [ticket], self._clock())
        except Exception:
            log.exception("SLA threshold re-check failed", extra={"workspace_id": ws, "ticket_id": ticket})

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._planned.clear()


class SlaMonitor:
    def __init__(self, db: Database, sla: SlaService, notifier: Notifier, *,
                 clock: Callable[[], datetime] = utcnow, plan_ahead_s: float = PLAN_AHEAD_S,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        """`plan_ahead_s=0` turns the precise timers off (sweeps only: for tests that drive a frozen clock);
        `sleep` is what the timers wait with (tests pass one that moves with their clock)."""
        self.db = db
        self.plan_ahead_s = plan_ahead_s
        self.sla = sla
        self.notifier = notifier
        self._clock = clock
        self.timers = SlaTimers(self._recheck, clock, sleep)

    async def _recheck(self, workspace_id: int, ticket_ids: list[int], now: datetime) -> None:
        await self.sweep_workspace(workspace_id, now, ticket_ids=ticket_ids)

    async def sweep(self, now: datetime | None = None) -> SweepReport:
        """One pass over every workspace (the scheduler claims each minute's tick first)."""
        now = now or self._clock()
        started = time.perf_counter()
        # System-wide: the monitor is a cross-workspace scheduled job; each workspace is then handled
        # in its own workspace-scoped sessions.
        async with self.db.read(Scope.system_wide()) as session:
            ids = list((await session.exec(select(Workspace.id).order_by(Workspace.id))).all())  # type: ignore[arg-type]
        report = SweepReport()
        for ws in ids:
            try:
                await self.sweep_workspace(ws, now, report)  # type: ignore[arg-type]
            except Exception:  # one workspace's bad data never stops the others
                log.exception("SLA sweep failed for a workspace", extra={"workspace_id": ws})
        report.seconds = time.perf_counter() - started
        return report

    async def sweep_workspace(self, workspace_id: int, now: datetime, report: SweepReport | None = None, *,
                              ticket_ids: Sequence[int] | None = None) -> SweepReport:
        """Refresh the workspace's clocks (or only these tickets'), post what was crossed, plan what is next."""
        report = report or SweepReport()
        results = await self.sla.refresh(workspace_id, ticket_ids, now)
        report.workspaces += 1
        report.clocks += len(results)
        plan = ([(at, workspace_id, ticket) for at, ticket in upcoming(results, now.timestamp(), self.plan_ahead_s)]
                if self.plan_ahead_s > 0 else [])
        report.upcoming.extend(plan)
        if plan:
            try:
                self.timers.plan(plan)
            except RuntimeError:  # no running loop (a synchronous caller): the minute sweep covers it
                pass
        candidates = crossed(results)
        if not candidates:
            return report
        won = await self._claim(workspace_id, candidates, now)
        for key in sorted(won):
            r, pct = candidates[key]
            t = r.ticket
            await self.notifier.notify(SlaWarningEvent(
                workspace_id=workspace_id, ticket_id=t.id, ticket_number=t.number, origin=Origin.SYSTEM.value,
                occurred_at=now, metric=r.metric.value, threshold=key[3], remaining_s=r.figures.remaining,
                due_at=dt(r.figures.due), customer_id=t.customer_id, subject=t.subject, priority=r.state.priority,
                used_pct=pct))
            report.warnings_posted += 1
            report.posted.append(key)
        return report

    async def _claim(self, workspace_id: int, candidates: dict[WarnKey, tuple[ClockResult, float]],
                     now: datetime) -> list[WarnKey]:
        """Insert the warning rows not yet present; the keys this call created and should post."""
        tickets = sorted({k[0] for k in candidates})
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            existing: set[WarnKey] = set()
            for i in range(0, len(tickets), CHUNK):
                rows = await session.execute(
                    select(SlaWarning.ticket_id, SlaWarning.metric, SlaWarning.cycle, SlaWarning.threshold)
                    .where(SlaWarning.ticket_id.in_(tickets[i:i + CHUNK])))  # type: ignore[attr-defined]
                existing.update((a, b, c, d) for a, b, c, d in rows)
            fresh = sorted(k for k in candidates if k not in existing)
            if not fresh:
                return []
            top: dict[tuple[int, str, int], int] = {}
            for k in fresh:
                top[k[:3]] = max(top.get(k[:3], 0), k[3])
            dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
            won: list[WarnKey] = []
            for i in range(0, len(fresh), CHUNK):
                values = [dict(workspace_id=workspace_id, ticket_id=k[0], metric=k[1], cycle=k[2], threshold=k[3],
                               used_pct=round(candidates[k][1], 3), posted=k[3] == top[k[:3]], created_at=now)
                          for k in fresh[i:i + CHUNK]]
                ins = dialect_insert(dialect, SlaWarning)
                stmt = ins.values(values).on_conflict_do_nothing(
                    index_elements=["ticket_id", "metric", "cycle", "threshold"]
                ).returning(SlaWarning.ticket_id, SlaWarning.metric, SlaWarning.cycle,
                            SlaWarning.threshold, SlaWarning.posted)
                for a, b, c, d, posted in (await session.execute(stmt)).all():
                    if posted:
                        won.append((a, b, c, d))
            return won

    async def aclose(self) -> None:
        await self.timers.close()

    async def warnings(self, workspace_id: int, ticket_id: int) -> list[SlaWarning]:
        """Warning rows of one ticket (for explain and tests)."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            return list((await session.exec(select(SlaWarning).where(SlaWarning.ticket_id == ticket_id)
                                            .order_by(sa.text("id")))).all())
