"""How many open tickets are at SLA risk: one indexed count over the stored clocks (the admin overview).

"At risk" means a clock that is counting (running or paused) with at most `RISK_PCT`% of its target left,
breached included. The monitor's pass (`SlaService.refresh`, each minute, and the threshold re-checks) stores
on every clock the instant from which that is true, `sla_clock.risk_from`, computed from the same state the
pass derives (so from every pause, resume, first response, stage change, priority change and calendar edit
the pass has seen):

- running: B⁻¹(B(start) + paused + (100 - RISK_PCT)% of the target), the first instant its used business time
  reaches that share (business time only moves forward, so the instant stays right while the clock runs);
- paused: the pause's start if it had already used that share, else none (a paused clock uses nothing);
- stopped, without a target, or past the calendar's horizon: none (the next pass recomputes it).

The ticket's earliest instant is also stored on its resolution clock's row, `ticket_risk_from` (NULL on the other
rows), so the count is `ticket_risk_from <= now` on the index `ix_sla_clock_ticket_risk` (workspace,
ticket_risk_from): a plain count of one index range, no DISTINCT (migration 0012_admin_risk_ticket; with the
per-clock column alone, counting distinct tickets over 54,000 at-risk clocks of the 100k bench desk took 16-28 ms
in SQLite and ~60 ms through the service). Exact for the passing of time, and as of the last pass for changes to
tickets, calendars and policies (a change made less than a minute ago shows at the next pass). Deleted tickets'
clocks are cleared by the full pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.sla.policies import Metric
from store.db import Scope
from store.tables import SlaClock, Ticket

if TYPE_CHECKING:
    from core.sla.config import TableCache, WorkspaceSla
    from core.sla.service import ClockResult, SlaService

RISK_PCT = 20.0  # "at risk": breached, or at most this share of the target left (the admin overview's count)


def risk_instants(tables: TableCache, cfg: WorkspaceSla, results: Sequence[ClockResult], now: datetime,
                  pct: float = RISK_PCT) -> list[float | None]:
    """Per result, the epoch instant from which it is at risk (see the module docstring), or None."""
    out: list[float | None] = [None] * len(results)
    share = 1.0 - pct / 100.0
    running: dict[int | None, list[int]] = {}
    for i, r in enumerate(results):
        st = r.state
        if st.stopped_at is not None or st.target_s <= 0:
            continue
        if st.paused_since is not None:
            if r.figures.remaining <= st.target_s * pct / 100.0:
                out[i] = st.paused_since
            continue
        running.setdefault(st.calendar_id, []).append(i)
    for cal_id, idx in running.items():
        table = tables.get(cfg.calendar_by_id(cal_id) if cal_id is not None else None, now)
        states = [results[i].state for i in idx]
        budget = (table.B(np.fromiter((s.start for s in states), np.float64, len(states)))
                  + np.fromiter((s.paused_acc_s + s.target_s * share for s in states), np.float64, len(states)))
        for i, at in zip(idx, table.B_inv(budget), strict=True):
            out[i] = None if np.isnan(at) else float(at)
    return out


def ticket_risk_instants(results: Sequence[ClockResult], risks: Sequence[float | None]) -> list[float | None]:
    """Per result: on the resolution clock, the earliest risk instant of the ticket's clocks; None elsewhere."""
    earliest: dict[int, float] = {}
    for r, at in zip(results, risks, strict=True):
        if at is not None:
            earliest[r.ticket.id] = min(at, earliest.get(r.ticket.id, at))
    return [earliest.get(r.ticket.id) if r.metric is Metric.RESOLUTION else None for r in results]


async def at_risk_count(sla: SlaService, workspace_id: int, now: datetime) -> int:
    """Open tickets with a clock breached or within `RISK_PCT`% of its target, as of the last pass."""
    async with sla.db.read(Scope.workspace(workspace_id)) as session:
        n = (await session.exec(select(func.count()).select_from(SlaClock).where(
            col(SlaClock.ticket_risk_from) <= now))).one()
    return int(n)


async def clear_deleted(session: AsyncSession) -> None:
    """Deleted tickets leave the pass, so their clocks would keep counting as at risk: clear them."""
    gone = select(Ticket.id).where(col(Ticket.deleted_at).is_not(None))
    await session.execute(sa.update(SlaClock).where(
        sa.or_(col(SlaClock.risk_from).is_not(None), col(SlaClock.ticket_risk_from).is_not(None)),
        col(SlaClock.ticket_id).in_(gone)).values(risk_from=None, ticket_risk_from=None))
