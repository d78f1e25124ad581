"""The outbox's SQL: claim due ops under a lease, finish them fenced by `attempts`, hold and release a
ticket's later ops behind a dead one (reliability-sla.md §2.8, §3.4, §3.5).

Claims run in one short write transaction (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: `BEGIN
IMMEDIATE`, so one claimer at a time) and commit before any HTTP. Per-ticket order: an op is claimable
only when every earlier op of its ticket is done or discarded. An expired lease is reclaimed by time,
never by worker identity, and the reclaimed op is treated as "outcome unknown" (its worker may have
sent the write before it died), so the next attempt looks for its marker before writing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel.ext.asyncio.session import AsyncSession

from store.db import Database, Scope
from store.enums import OutboxStatus
from store.tables import OutboxOp, PsaConnection, Ticket

FINISHED = (OutboxStatus.DONE.value, OutboxStatus.DISCARDED.value)


def _earlier_unfinished() -> sa.Exists:
    o2 = aliased(OutboxOp)
    return (
        sa.select(o2.id)
        .where(o2.ticket_id == OutboxOp.ticket_id, o2.id < OutboxOp.id, o2.status.notin_(FINISHED))  # type: ignore[attr-defined]
        .exists()
    )


@dataclass(frozen=True, slots=True)
class Claim:
    """A claimed op and what its delivery needs from its ticket, read in the claim's transaction."""

    op: OutboxOp
    ticket_external_id: str | None
    ticket_number: int | None


async def claim(db: Database, *, now: datetime, lease: timedelta, limit: int = 1,
                exclude_connections: Collection[int] = ()) -> list[Claim]:
    """Claim up to `limit` due ops: status inflight, attempts + 1, lease until now + lease (one UPDATE)."""
    due = sa.or_(
        sa.and_(OutboxOp.status == OutboxStatus.PENDING.value, OutboxOp.next_attempt_at <= now),
        sa.and_(OutboxOp.status == OutboxStatus.INFLIGHT.value, OutboxOp.lease_until < now),  # type: ignore[operator]
    )
    enabled = sa.select(PsaConnection.id).where(PsaConnection.enabled == sa.true())
    pick = (
        sa.select(OutboxOp.id)
        .where(due, ~_earlier_unfinished(), OutboxOp.connection_id.in_(enabled))  # type: ignore[attr-defined]
        .order_by(OutboxOp.next_attempt_at, OutboxOp.id)
        .limit(limit)
    )
    if exclude_connections:
        pick = pick.where(OutboxOp.connection_id.notin_(list(exclude_connections)))  # type: ignore[attr-defined]
    if not db.is_sqlite:
        pick = pick.with_for_update(skip_locked=True, of=OutboxOp.__table__)  # type: ignore[arg-type]
    table = OutboxOp.__table__
    stmt = (
        sa.update(table)
        .where(table.c.id.in_(pick.scalar_subquery()))
        .values(
            status=OutboxStatus.INFLIGHT.value,
            attempts=table.c.attempts + 1,
            lease_until=now + lease,
            updated_at=now,
            # A reclaimed op's worker may have sent its write before it died: look before writing again.
            outcome_unknown=sa.case((table.c.status == OutboxStatus.INFLIGHT.value, sa.true()),
                                    else_=table.c.outcome_unknown),
        )
        .returning(*table.c)
    )
    # System scope: the worker serves every workspace; each op is then finished in its own workspace scope.
    async with db.write(Scope.system_wide()) as session:
        ops = [OutboxOp(**dict(row._mapping)) for row in (await session.execute(stmt)).all()]
        if not ops:
            return []
        ticket_ids = {op.ticket_id for op in ops if op.ticket_id is not None}
        tickets = {}
        if ticket_ids:
            rows = await session.execute(sa.select(Ticket.id, Ticket.external_id, Ticket.number)
                                         .where(Ticket.id.in_(ticket_ids)))  # type: ignore[union-attr]
            tickets = {r.id: (r.external_id, r.number) for r in rows}
    ops.sort(key=lambda o: (o.next_attempt_at, o.id))
    return [Claim(op, *tickets.get(op.ticket_id, (None, None))) for op in ops]  # type: ignore[arg-type]


async def finish(session: AsyncSession, op_id: int, attempt: int, **values: Any) -> bool:
    """Record an outcome only if this attempt still owns the op (fencing); False for a stale attempt."""
    res = await session.execute(
        sa.update(OutboxOp)
        .where(OutboxOp.id == op_id, OutboxOp.attempts == attempt,  # type: ignore[arg-type]
               OutboxOp.status == OutboxStatus.INFLIGHT.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(res.rowcount)


async def block_followers(session: AsyncSession, op: OutboxOp) -> int:
    """Hold the ticket's later pending ops behind a dead op (status blocked)."""
    if op.ticket_id is None:
        return 0
    res = await session.execute(
        sa.update(OutboxOp)
        .where(OutboxOp.ticket_id == op.ticket_id, OutboxOp.id > op.id,  # type: ignore[operator]
               OutboxOp.status == OutboxStatus.PENDING.value)
        .values(status=OutboxStatus.BLOCKED.value)
        .execution_options(synchronize_session=False)
    )
    return int(res.rowcount or 0)


async def release_followers(session: AsyncSession, ticket_id: int | None, now: datetime) -> int:
    """Let blocked ops run again up to the ticket's next dead op (all of them when none is left)."""
    if ticket_id is None:
        return 0
    first_dead = (await session.execute(
        sa.select(sa.func.min(OutboxOp.id)).where(OutboxOp.ticket_id == ticket_id,
                                                  OutboxOp.status == OutboxStatus.DEAD.value))).scalar()
    cond = [OutboxOp.ticket_id == ticket_id, OutboxOp.status == OutboxStatus.BLOCKED.value]
    if first_dead is not None:
        cond.append(OutboxOp.id < first_dead)  # type: ignore[operator]
    res = await session.execute(
        sa.update(OutboxOp).where(*cond)
        .values(status=OutboxStatus.PENDING.value, next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(res.rowcount or 0)


async def status_counts(session: AsyncSession) -> dict[str, int]:
    rows = (await session.execute(sa.select(OutboxOp.status, sa.func.count()).group_by(OutboxOp.status))).all()
    return {str(s): int(n) for s, n in rows}


def ids_of(ops: Sequence[OutboxOp]) -> list[int]:
    return [op.id for op in ops if op.id is not None]
