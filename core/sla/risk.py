"""How many open tickets are at SLA risk, from the stored clocks (the admin overview on big desks).

The monitor's pass (`SlaService.refresh`, each minute) stores every open ticket's clocks: the breach instant
once a target is used up and, for a paused clock, the business time it has used (`paused_used_s`; it does not
change while the clock stays paused). A ticket whose stored clocks are current (they have seen the ticket's
version and any first response) is counted from them:

- breached, or paused having used (100 - pct)% of its target or more: one SQL count;
- running and not breached: figures from the stored state with the same vectorised `evaluate` as the pass,
  only for clocks whose wall time since their start could be that close (business time never runs faster
  than wall time), which on a real desk are the few young tickets.

A ticket whose clocks are not current (changed since the last pass, or none stored yet) is derived in full
exactly as `breaching_ids` does. So the count equals `len(breaching_ids(within_pct))`, except that a calendar
edit reaches paused clocks at the next pass (within a minute) instead of at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.sla.clock import evaluate
from core.sla.config import load_config
from core.sla.policies import Metric
from store.db import Scope
from store.enums import OPEN_STAGES
from store.tables import SlaClock, Ticket

if TYPE_CHECKING:
    from core.sla.service import SlaService

LITERAL_IDS = 500  # up to this many not-current tickets are excluded by a literal list, beyond by a subquery


def _open() -> Any:
    return sa.and_(col(Ticket.deleted_at).is_(None), col(Ticket.stage).in_([s.value for s in OPEN_STAGES]))


def _current() -> Any:
    """The clock row has seen its ticket's version and, for first response, the response."""
    unseen_response = sa.and_(col(SlaClock.metric) == Metric.FIRST_RESPONSE.value,
                              col(Ticket.first_response_at).is_not(None),
                              sa.func.coalesce(col(SlaClock.stop_reason), "") != "first_response")
    return sa.and_(col(SlaClock.seen_version) == col(Ticket.version), sa.not_(unseen_response))


def _live() -> Any:
    return sa.and_(_open(), col(SlaClock.stopped_at).is_(None), col(SlaClock.target_s) > 0, _current())


def _clock_counts() -> Any:
    """Clocks stored per ticket, grouped once (a correlated count per ticket made SQLite rescan the whole
    table for each of 37,500 open tickets on the 100k bench desk)."""
    return select(col(SlaClock.ticket_id).label("ticket_id"), func.count().label("n")).group_by(
        col(SlaClock.ticket_id)).subquery()


async def _not_current(session: AsyncSession) -> list[int]:
    """Open tickets whose stored clocks are behind the ticket, or missing."""
    joined = select(SlaClock.ticket_id).join(Ticket, col(Ticket.id) == col(SlaClock.ticket_id))
    behind = joined.where(_open(), sa.not_(_current()))
    counts = _clock_counts()
    missing = select(Ticket.id).outerjoin(counts, counts.c.ticket_id == col(Ticket.id)).where(
        _open(), sa.or_(counts.c.n.is_(None), counts.c.n < len(Metric)))
    ids = {int(i) for i in (await session.exec(behind)).all()} | {int(i) for i in (await session.exec(missing)).all()
                                                                  if i is not None}
    return sorted(ids)


def _excluding(ids: Sequence[int]) -> Any:
    if not ids:
        return sa.true()
    if len(ids) <= LITERAL_IDS:
        return col(SlaClock.ticket_id).not_in(ids)
    behind = select(SlaClock.ticket_id).join(Ticket, col(Ticket.id) == col(SlaClock.ticket_id)).where(
        _open(), sa.not_(_current()))
    counts = _clock_counts()
    return sa.and_(col(SlaClock.ticket_id).not_in(behind),
                   col(SlaClock.ticket_id).not_in(select(counts.c.ticket_id).where(counts.c.n < len(Metric))))


def _stored_at_risk(share: float) -> Any:
    return sa.or_(col(SlaClock.breached_at).is_not(None), col(SlaClock.paused_used_s) >= col(SlaClock.target_s) * share)


async def _running_near(sla: SlaService, session: AsyncSession, workspace_id: int, now: datetime, share: float,
                        pct: float, skip: Sequence[int]) -> set[int]:
    """Tickets with a current, running, unbreached clock within pct% of its target (stored state, evaluated)."""
    rows = (await session.execute(
        sa.select(col(SlaClock.ticket_id), col(SlaClock.calendar_id), col(SlaClock.start_at), col(SlaClock.target_s),
                  col(SlaClock.paused_acc_s)).join(Ticket, col(Ticket.id) == col(SlaClock.ticket_id))
        .where(_live(), _excluding(skip), col(SlaClock.paused_since).is_(None),
               col(SlaClock.breached_at).is_(None)))).all()
    near = [r for r in rows if (now - r[2]).total_seconds() >= r[3] * share]
    if not near:
        return set()
    cfg = await load_config(session, workspace_id)
    out: set[int] = set()
    for cal_id in {r[1] for r in near}:
        group = [r for r in near if r[1] == cal_id]
        table = sla.tables.get(cfg.calendar_by_id(cal_id) if cal_id is not None else None, now)
        nan, target = np.full(len(group), np.nan), np.array([r[3] for r in group], dtype=np.float64)
        ev = evaluate(table, start=np.array([r[2].timestamp() for r in group]), target=target,
                      paused_acc=np.array([r[4] for r in group]), paused_since=nan, stopped_at=nan,
                      now=now.timestamp())
        out.update(r[0] for r, at_risk in zip(group, ev.remaining <= target * pct / 100.0, strict=True) if at_risk)
    return out


async def at_risk_count(sla: SlaService, workspace_id: int, now: datetime, *, within_pct: float) -> int:
    """Open tickets with a clock breached or within `within_pct`% of its target (see the module docstring)."""
    share = 1.0 - within_pct / 100.0
    async with sla.db.read(Scope.workspace(workspace_id)) as session:
        behind = await _not_current(session)
        stored = select(SlaClock.ticket_id).join(Ticket, col(Ticket.id) == col(SlaClock.ticket_id)).where(
            _live(), _excluding(behind), _stored_at_risk(share))
        counted = (await session.exec(select(func.count(sa.distinct(stored.subquery().c.ticket_id))))).one()
        near = await _running_near(sla, session, workspace_id, now, share, within_pct, behind)
        if near:
            also = (await session.exec(select(SlaClock.ticket_id).join(
                Ticket, col(Ticket.id) == col(SlaClock.ticket_id)).where(
                _live(), col(SlaClock.ticket_id).in_(sorted(near)), _stored_at_risk(share)))).all()
            near -= set(also)
    derived = await sla.breaching_ids_of(workspace_id, behind, now, within_pct=within_pct) if behind else []
    return int(counted) + len(near) + len(derived)
