"""The SLA monitor: each minute, bring every open ticket's clocks up to date and post threshold warnings.

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

import logging
import time
from collections.abc import Callable, Sequence
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
WarnKey = tuple[int, str, int, int]  # ticket, metric, cycle, threshold


@dataclass
class SweepReport:
    workspaces: int = 0
    clocks: int = 0
    warnings_posted: int = 0
    seconds: float = 0.0
    posted: list[WarnKey] = field(default_factory=list)


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


class SlaMonitor:
    def __init__(self, db: Database, sla: SlaService, notifier: Notifier, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.sla = sla
        self.notifier = notifier
        self._clock = clock

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

    async def sweep_workspace(self, workspace_id: int, now: datetime, report: SweepReport | None = None
                              ) -> SweepReport:
        report = report or SweepReport()
        results = await self.sla.refresh(workspace_id, None, now)
        report.workspaces += 1
        report.clocks += len(results)
        candidates = crossed(results)
        if not candidates:
            return report
        won = await self._claim(workspace_id, candidates, now)
        for key in sorted(won):
            r, _ = candidates[key]
            t = r.ticket
            await self.notifier.notify(SlaWarningEvent(
                workspace_id=workspace_id, ticket_id=t.id, ticket_number=t.number, origin=Origin.SYSTEM.value,
                occurred_at=now, metric=r.metric.value, threshold=key[3], remaining_s=r.figures.remaining,
                due_at=dt(r.figures.due), customer_id=t.customer_id, subject=t.subject, priority=r.state.priority))
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

    async def warnings(self, workspace_id: int, ticket_id: int) -> list[SlaWarning]:
        """Warning rows of one ticket (for explain and tests)."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            return list((await session.exec(select(SlaWarning).where(SlaWarning.ticket_id == ticket_id)
                                            .order_by(sa.text("id")))).all())
