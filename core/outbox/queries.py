"""The outbox's SQL (Core statements on the table, so every one names its rows explicitly): claim due ops under a lease, finish them fenced by `attempts`, hold and release a
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
from sqlmodel.ext.asyncio.session import AsyncSession

from core.outbox.ops import SIDE_KINDS, OpKind
from store.db import Database, Scope
from store.enums import OutboxStatus
from store.tables import OutboxOp, PsaConnection, Ticket, TimelineEntry

FINISHED = (OutboxStatus.DONE.value, OutboxStatus.DISCARDED.value)
OUTBOX: sa.Table = OutboxOp.__table__  # type: ignore[attr-defined]
OP = OUTBOX.c
CONN = PsaConnection.__table__.c  # type: ignore[attr-defined]
TICKET = Ticket.__table__.c  # type: ignore[attr-defined]


ALERT_KIND = OpKind.ALERT_ACTION.value
TENANT_KIND = OpKind.TENANT_ACTION.value


def lane_of(kind: str) -> str:
    """A ticket's queue an op of this kind waits in: "psa", or its own kind for ops sent elsewhere."""
    return kind if kind in SIDE_KINDS else "psa"


def _lane(kind: Any, lane: str) -> Any:
    return kind.notin_(SIDE_KINDS) if lane == "psa" else kind == lane


def _earlier_unfinished() -> sa.Exists:
    """A ticket's ops form independent queues: PSA writes, alert actions (sent to the MSP's alert webhook) and
    Microsoft 365 quick actions (sent to Graph), so a dead one of a kind never holds another kind, nor the reverse."""
    o2 = OUTBOX.alias("earlier")
    # Quick actions are independent of each other (a refused reset must not hold a session revoke): no order.
    same_lane = sa.or_(sa.and_(o2.c.kind.in_(SIDE_KINDS), o2.c.kind == OP.kind, OP.kind != TENANT_KIND),
                       sa.and_(o2.c.kind.notin_(SIDE_KINDS), OP.kind.notin_(SIDE_KINDS)))
    return sa.select(o2.c.id).where(o2.c.ticket_id == OP.ticket_id, o2.c.id < OP.id,
                                    o2.c.status.notin_(FINISHED), same_lane).exists()


@dataclass(frozen=True, slots=True)
class Claim:
    """A claimed op and what its delivery needs from its ticket, read in the claim's transaction."""

    op: OutboxOp
    ticket_external_id: str | None
    ticket_number: int | None


async def claim(db: Database, *, now: datetime, lease: timedelta, limit: int = 1,
                exclude_connections: Collection[int] = (), unsafe: timedelta = timedelta(0)) -> list[Claim]:
    """Claim up to `limit` due ops: status inflight, attempts + 1, lease until now + lease (one UPDATE).

    An op whose lease lapsed (its worker died or stalled) is taken over at once, unless that worker
    started a PSA write less than `unsafe` (client timeout + settle) ago: that write may still land, so
    the op waits, pending with its outcome unknown, until it no longer can, and then looks before writing.
    """
    due = sa.or_(
        sa.and_(OP.status == OutboxStatus.PENDING.value, OP.next_attempt_at <= now),
        sa.and_(OP.status == OutboxStatus.INFLIGHT.value, OP.lease_until < now),
    )
    enabled = sa.select(CONN.id).where(CONN.enabled == sa.true())
    pick = (
        sa.select(OP.id)
        .where(due, ~_earlier_unfinished(),
               sa.or_(OP.connection_id.in_(enabled), sa.and_(OP.connection_id.is_(None), OP.kind.in_(SIDE_KINDS))))
        .order_by(OP.next_attempt_at, OP.id)
        .limit(limit)
    )
    if exclude_connections:
        # (alert and Microsoft 365 actions do not go to the PSA: a paused PSA connection does not hold them)
        pick = pick.where(sa.or_(OP.kind.in_(SIDE_KINDS), OP.connection_id.notin_(list(exclude_connections))))
    if not db.is_sqlite:
        pick = pick.with_for_update(skip_locked=True, of=OUTBOX)
    stmt = (
        sa.update(OUTBOX)
        .where(OP.id.in_(pick.scalar_subquery()))
        .values(
            status=OutboxStatus.INFLIGHT.value,
            attempts=OP.attempts + 1,
            lease_until=now + lease,
            updated_at=now,
            # A reclaimed op's worker may have sent its write before it died: look before writing again.
            outcome_unknown=sa.case((OP.status == OutboxStatus.INFLIGHT.value, sa.true()), else_=OP.outcome_unknown),
        )
        .returning(*OP)
    )
    if db.is_sqlite and not await _anything_due(db, due):
        return []  # an idle poll (or a wake-up whose op another claim took) costs no write turn
    # System scope: the worker serves every workspace; each op is then finished in its own workspace scope.
    async with db.write(Scope.system_wide()) as session:
        if unsafe > timedelta(0):  # in the claim's transaction: one write turn per claim, not two
            await _park_unsafe_takeovers(session, now, unsafe)
        ops = [OutboxOp(**dict(row._mapping)) for row in (await session.execute(stmt)).all()]
        if not ops:
            return []
        ticket_ids = {op.ticket_id for op in ops if op.ticket_id is not None}
        tickets = {}
        if ticket_ids:
            rows = await session.execute(sa.select(TICKET.id, TICKET.external_id, TICKET.number)
                                         .where(TICKET.id.in_(ticket_ids)))
            tickets = {r.id: (r.external_id, r.number) for r in rows}
    ops.sort(key=lambda o: (o.next_attempt_at, o.id))
    return [Claim(op, *tickets.get(op.ticket_id, (None, None))) for op in ops]


async def _anything_due(db: Database, due: Any) -> bool:
    """SQLite: is any op due or lapsed (a read, no write turn)? A claim that would find nothing then skips its
    write transaction; an op committed just after this read wakes the worker again (Database.listen)."""
    async with db.read(Scope.system_wide()) as session:
        return (await session.execute(sa.select(OP.id).where(due).limit(1))).first() is not None


async def _park_unsafe_takeovers(session: AsyncSession, now: datetime, unsafe: timedelta) -> None:
    """Lapsed leases whose worker started a write less than `unsafe` ago: pending until it cannot land."""
    lapsed = sa.and_(OP.status == OutboxStatus.INFLIGHT.value, OP.lease_until < now, OP.sent_at.is_not(None),
                     OP.sent_at > now - unsafe)
    rows = (await session.execute(sa.select(OP.id, OP.attempts, OP.sent_at).where(lapsed))).all()
    for r in rows:  # each still as read (fenced by attempts): a worker racing us keeps its claim
        await session.execute(sa.update(OUTBOX).where(
            OP.id == r.id, OP.attempts == r.attempts, OP.status == OutboxStatus.INFLIGHT.value,
            OP.lease_until < now,
        ).values(status=OutboxStatus.PENDING.value, outcome_unknown=sa.true(), lease_until=None,
                 next_attempt_at=r.sent_at + unsafe, updated_at=now))


async def finish(session: AsyncSession, op_id: int, attempt: int, **values: Any) -> bool:
    """Record an outcome only if this attempt still owns the op (fencing); False for a stale attempt."""
    res = await session.execute(
        sa.update(OUTBOX).where(OP.id == op_id, OP.attempts == attempt, OP.status == OutboxStatus.INFLIGHT.value)
        .values(**values)
    )
    return bool(res.rowcount)  # type: ignore[attr-defined]


async def block_followers(session: AsyncSession, op: OutboxOp) -> int:
    """Hold the ticket's later pending ops (of the same lane, see `_lane`) behind a dead op (status blocked)."""
    if op.ticket_id is None or op.kind == TENANT_KIND:  # quick actions hold nothing (see _earlier_unfinished)
        return 0
    res = await session.execute(
        sa.update(OUTBOX).where(OP.ticket_id == op.ticket_id, OP.id > op.id, OP.status == OutboxStatus.PENDING.value,
                                _lane(OP.kind, lane_of(op.kind)))
        .values(status=OutboxStatus.BLOCKED.value)
    )
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


async def release_followers(session: AsyncSession, ticket_id: int | None, now: datetime) -> int:
    """Let blocked ops run again up to the ticket's next dead op (all of them when none is left), per lane."""
    if ticket_id is None:
        return 0
    released = 0
    for lane in ("psa", *SIDE_KINDS):
        first_dead = (await session.execute(sa.select(sa.func.min(OP.id)).where(
            OP.ticket_id == ticket_id, OP.status == OutboxStatus.DEAD.value, _lane(OP.kind, lane)))).scalar()
        cond = [OP.ticket_id == ticket_id, OP.status == OutboxStatus.BLOCKED.value, _lane(OP.kind, lane)]
        if first_dead is not None:
            cond.append(OP.id < first_dead)
        res = await session.execute(
            sa.update(OUTBOX).where(*cond).values(status=OutboxStatus.PENDING.value, next_attempt_at=now,
                                                  updated_at=now)
        )
        released += int(res.rowcount or 0)  # type: ignore[attr-defined]
    return released


async def status_counts(session: AsyncSession, workspace_id: int) -> dict[str, int]:
    """Ops per status in one workspace (Core statements are not scoped by the session: filter here)."""
    rows = (await session.execute(sa.select(OP.status, sa.func.count()).where(OP.workspace_id == workspace_id)
                                  .group_by(OP.status))).all()
    return {str(s): int(n) for s, n in rows}


def ids_of(ops: Sequence[OutboxOp]) -> list[int]:
    return [op.id for op in ops if op.id is not None]


_FAMILY_KINDS = {
    OpKind.ADD_NOTE.value: ("note_public", "note_internal", "note_resolution"),
    OpKind.ADD_TIME_ENTRY.value: ("time_entry",),
    OpKind.UPLOAD_ATTACHMENT.value: ("attachment",),
}


async def probe_context(db: Database, op: OutboxOp) -> tuple[str | None, frozenset[str]]:
    """For an op whose earlier write may have landed: the PSA id a sync already linked to its timeline
    entry (if any), and the PSA ids of the ticket's other records of that kind (not this write)."""
    kinds = _FAMILY_KINDS.get(op.kind)
    if kinds is None or op.ticket_id is None:
        return None, frozenset()
    tl = TimelineEntry.__table__.c  # type: ignore[attr-defined]
    async with db.read(Scope.workspace(op.workspace_id)) as session:
        rows = (await session.execute(sa.select(tl.id, tl.external_id).where(
            tl.workspace_id == op.workspace_id, tl.ticket_id == op.ticket_id, tl.kind.in_(kinds),
            tl.external_id.is_not(None)))).all()
    own = next((r.external_id for r in rows if r.id == op.timeline_entry_id), None)
    return own, frozenset(str(r.external_id) for r in rows if r.id != op.timeline_entry_id)


async def renew_lease(db: Database, op: OutboxOp, *, now: datetime, lease: timedelta) -> bool:
    """Extend the owning attempt's lease (a heartbeat while it works); False if it no longer owns the op."""
    async with db.write(Scope.workspace(op.workspace_id)) as session:
        res = await session.execute(sa.update(OUTBOX).where(
            OP.id == op.id, OP.attempts == op.attempts, OP.status == OutboxStatus.INFLIGHT.value,
        ).values(lease_until=now + lease))
        return bool(res.rowcount)  # type: ignore[attr-defined]


async def mark_sent(db: Database, op: OutboxOp, *, now: datetime) -> bool:
    """Record, fenced, that the owning attempt is about to start a PSA write; False if it no longer owns
    the op (or its lease lapsed): then it must not send."""
    async with db.write(Scope.workspace(op.workspace_id)) as session:
        res = await session.execute(sa.update(OUTBOX).where(
            OP.id == op.id, OP.attempts == op.attempts, OP.status == OutboxStatus.INFLIGHT.value,
            OP.lease_until > now,
        ).values(sent_at=now))
        return bool(res.rowcount)  # type: ignore[attr-defined]
