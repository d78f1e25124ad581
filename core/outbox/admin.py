"""Dead letters and the operator's view of the outbox: list, show, redrive, discard.

Used by `deskbridge outbox …` (bot/cli/outbox.py), the REST API and chat admin commands. Every
function is scoped to one workspace. Redrive and discard are audited admin actions:

- redrive: a dead op goes back to pending with attempts reset and the SAME marker (so an earlier
  attempt that did land is found, not written twice); the ticket's blocked ops are released behind it.
- discard: the op is dropped with a reason (kept on record, status `discarded`); the ticket's blocked
  ops are released; an attachment's stored bytes are pruned.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.context import Actor
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from core.outbox import queries
from core.outbox.audit import Outcome, audit_row, redact
from core.outbox.ops import OpKind
from core.outbox.views import OutboxAuditView, OutboxOpDetail, OutboxOpView, OutboxPage
from core.ticket_lookup import MAX_ID
from store.db import Database, Scope
from store.enums import OutboxStatus
from store.tables import AttachmentBlob, AuditLog, OutboxOp, PsaConnection, Ticket
from store.types import utcnow

MAX_PAGE = 200
REDRIVABLE = (OutboxStatus.DEAD.value,)
DISCARDABLE = (OutboxStatus.DEAD.value, OutboxStatus.BLOCKED.value, OutboxStatus.PENDING.value)
_STATUSES = {s.value for s in OutboxStatus}


def explain(op: OutboxOp, *, waiting_on: int | None = None, connection: str | None = None) -> str | None:
    """What is happening to a write and what an operator can do about it, in words."""
    conn = connection or "<connection>"
    code = op.last_status_code
    if op.status == OutboxStatus.DEAD.value:
        # the cause the worker read from the PSA's answer (recorder.dead_cause); older rows have only the status
        cause = str((op.result or {}).get("cause") or "")
        if cause == "permission" or (code == 403 and not cause):
            return (f"The PSA's API account may not do this (its security role); the connection's other writes go on. "
                    f"Grant it in the PSA, then retry it on the Dead letters page or with "
                    f"`deskbridge outbox retry {op.id}`, or discard it with a reason.")
        if cause == "credentials" and code != 403 or code == 401:
            return (f"The PSA refused the connection's credentials. Re-enter them (the connection's admin page, or "
                    f"`deskbridge connection reauth {conn}`), then retry it on the Dead letters page or with "
                    f"`deskbridge outbox retry {op.id}` (or `--all-dead`).")
        if cause == "deleted" or code == 404 or "deleted in the PSA" in (op.last_error or ""):
            return (f"The ticket is no longer in the PSA (deleted or merged there). Nothing can be written to it: "
                    f"discard it with a reason on the Dead letters page or with "
                    f"`deskbridge outbox discard {op.id} --reason 'deleted in the PSA'`.")
        if cause == "refused" or code is not None and 400 <= code < 500:
            said = f" (HTTP {code})" if code is not None else ""
            return (f"The PSA refused this write{said}: {(op.last_error or '')[:300]} Fix what it names "
                    f"in the PSA, then retry it "
                    f"(Dead letters page, or `deskbridge outbox retry {op.id}`), or discard it with a reason.")
        return (f"Gave up after {op.attempts} attempts. Retry it (Dead letters page, or "
                f"`deskbridge outbox retry {op.id}`) or discard it.")
    if op.status == OutboxStatus.BLOCKED.value:
        first = f"#{waiting_on}" if waiting_on else "an earlier write"
        return (f"Held behind {first} of the same ticket, which failed: writes of a ticket go in order. Retry or "
                f"discard {first} and this one follows.")
    if op.status == OutboxStatus.PENDING.value:
        if waiting_on:
            return f"Waits for #{waiting_on} of the same ticket (writes of a ticket go to the PSA in order)."
        if op.attempts and op.last_error:
            return f"Will try again ({op.attempts} of {op.max_attempts} attempts so far): {op.last_error[:300]}"
    if op.status == OutboxStatus.INFLIGHT.value:
        return "Being sent to the PSA now."
    return None


def op_view(op: OutboxOp, ticket_number: int | None = None, *, waiting_on: int | None = None,
            connection: str | None = None) -> OutboxOpView:
    """A row as an operator sees it (payload redacted), with what is happening to it in words."""
    return OutboxOpView(
        id=op.id,  # type: ignore[arg-type]
        workspace_id=op.workspace_id, connection_id=op.connection_id, ticket_id=op.ticket_id,
        ticket_number=ticket_number, kind=op.kind, status=op.status, attempts=op.attempts,
        max_attempts=op.max_attempts, marker=op.marker, actor=op.actor, payload=redact(op.payload),
        result=dict(op.result or {}), last_error=op.last_error, last_status_code=op.last_status_code,
        outcome_unknown=op.outcome_unknown, next_attempt_at=op.next_attempt_at, lease_until=op.lease_until,
        created_at=op.created_at, updated_at=op.updated_at, finished_at=op.finished_at,
        waiting_on=waiting_on, why=explain(op, waiting_on=waiting_on, connection=connection),
    )


async def _context(session: AsyncSession, ops: list[OutboxOp]) -> tuple[dict[int, int], dict[int, str]]:
    """For each waiting op, the earlier unfinished op of its ticket (same lane) it waits behind; and the
    connections' names (for the commands an operator is told to run)."""
    waiting = [o for o in ops if o.status in (OutboxStatus.PENDING.value, OutboxStatus.BLOCKED.value) and o.ticket_id]
    behind: dict[int, int] = {}
    if waiting:
        tickets = sorted({o.ticket_id for o in waiting})  # type: ignore[type-var]
        rows = (await session.exec(select(col(OutboxOp.id), col(OutboxOp.ticket_id), col(OutboxOp.kind)).where(
            col(OutboxOp.ticket_id).in_(tickets),
            col(OutboxOp.status).notin_(queries.FINISHED)).order_by(col(OutboxOp.id)))).all()
        for o in waiting:
            if o.id is None:
                continue
            lane = queries.lane_of(o.kind)
            earlier = [rid for rid, ticket_id, kind in rows if rid is not None and ticket_id == o.ticket_id
                       and rid < o.id and queries.lane_of(kind) == lane]
            if earlier:
                behind[o.id] = earlier[-1] if o.status == OutboxStatus.PENDING.value else earlier[0]
    ids = sorted({o.connection_id for o in ops if o.connection_id is not None})  # None: no PSA (side ops)
    names = dict((await session.exec(select(PsaConnection.id, PsaConnection.name).where(
        PsaConnection.id.in_(ids)))).all()) if ids else {}  # type: ignore[union-attr]
    return behind, names  # type: ignore[return-value]


def _name(names: dict[int, str], op: OutboxOp) -> str | None:
    """The op's connection by name; an op without one never goes to a PSA (a quick or alert action)."""
    return None if op.connection_id is None else names.get(op.connection_id)


def audit_view(row: AuditLog) -> OutboxAuditView:
    return OutboxAuditView(
        id=row.id, op_id=row.op_id, attempt=row.attempt, action=row.action, outcome=row.outcome,  # type: ignore[arg-type]
        response_status=row.response_status, error=row.error, duration_ms=row.duration_ms, actor=row.actor,
        request=dict(row.request or {}), created_at=row.created_at,
    )


def _statuses(status: str | None) -> list[str] | None:
    if status is None or status.strip() in ("", "all"):
        return None
    wanted = [s.strip().lower() for s in status.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in _STATUSES]
    if unknown:
        raise InvalidInput(f"Unknown outbox status: {', '.join(unknown)}.",
                           hint="Use one or more of: " + ", ".join(sorted(_STATUSES)) + " (comma-separated).",
                           field="status")
    return wanted


def _actor_name(actor: Actor | str) -> str:
    return actor if isinstance(actor, str) else actor.display


def _require_admin(actor: Actor | str, what: str) -> None:
    if isinstance(actor, Actor) and not actor.is_admin:
        raise PermissionDenied(f"Only workspace admins can {what}.", hint="Ask an admin of your workspace.")


OP_KINDS = tuple(k.value for k in OpKind)


class OutboxAdmin:
    """Operator actions on the outbox of one workspace at a time."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self._clock = clock

    async def list_ops(self, workspace_id: int, status: str | None = None, limit: int = 50,
                       cursor: str | None = None, *, ticket_id: int | None = None, connection_id: int | None = None,
                       kind: str | None = None, ticket_number: int | None = None) -> OutboxPage:
        """Ops newest first; `status` is one status or a comma list ("dead,blocked"); keyset `cursor`; narrowed to
        a ticket (by id or number), a connection, or a kind of write."""
        limit = max(1, min(int(limit), MAX_PAGE))
        stmt = select(OutboxOp, Ticket.number).join(Ticket, Ticket.id == OutboxOp.ticket_id, isouter=True)  # type: ignore[arg-type]
        wanted = _statuses(status)
        if wanted:
            stmt = stmt.where(OutboxOp.status.in_(wanted))  # type: ignore[attr-defined]
        if ticket_id is not None:
            stmt = stmt.where(OutboxOp.ticket_id == ticket_id)
        if ticket_number is not None:
            stmt = stmt.where(Ticket.number == ticket_number)
        if connection_id is not None:
            stmt = stmt.where(OutboxOp.connection_id == connection_id)
        if kind:
            if kind not in OP_KINDS:
                raise InvalidInput(f"'{kind}' is not a kind of write.", hint="Use one of: " + ", ".join(OP_KINDS) + ".",
                                   field="kind")
            stmt = stmt.where(OutboxOp.kind == kind)
        if cursor:
            try:
                before = int(cursor)
                if not 0 < before <= MAX_ID:
                    raise ValueError(cursor)
                stmt = stmt.where(OutboxOp.id < before)  # type: ignore[operator]
            except ValueError:
                raise InvalidInput("That page cursor is not valid.", hint="Start again without a cursor.",
                                   field="cursor") from None
        stmt = stmt.order_by(OutboxOp.id.desc()).limit(limit + 1)  # type: ignore[union-attr]
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(stmt)).all()
            behind, names = await _context(session, [op for op, _ in rows[:limit]])
        items = tuple(op_view(op, number, waiting_on=behind.get(op.id), connection=_name(names, op))  # type: ignore[arg-type]
                      for op, number in rows[:limit])
        return OutboxPage(items, str(items[-1].id) if len(rows) > limit else None)

    async def get_op(self, workspace_id: int, op_id: int) -> OutboxOpDetail:
        """One op and every audit row about it, oldest first."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            op = await self._load(session, op_id)
            number = (await session.get(Ticket, op.ticket_id)).number if op.ticket_id else None  # type: ignore[union-attr]
            audit = (await session.exec(select(AuditLog).where(AuditLog.op_id == op_id)
                                        .order_by(AuditLog.id))).all()  # type: ignore[arg-type]
            behind, names = await _context(session, [op])
        view = op_view(op, number, waiting_on=behind.get(op_id), connection=_name(names, op))
        return OutboxOpDetail(op=view, audit=tuple(audit_view(a) for a in audit))

    async def redrive(self, workspace_id: int, op_id: int, actor: Actor | str) -> OutboxOpView:
        """Send a dead op back: pending now, attempts reset, same marker; blocked followers released."""
        _require_admin(actor, "retry failed PSA writes")
        now = self._clock()
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            op = await self._load(session, op_id)
            if op.status not in REDRIVABLE:
                raise Conflict(f"Write {op_id} is {op.status}; only dead writes can be retried.",
                               hint="See them on the admin page Dead letters (/admin/dead-letters) or with "
                                    "`deskbridge outbox list --status dead`.")
            previous = op.attempts
            op.status, op.attempts, op.next_attempt_at = OutboxStatus.PENDING.value, 0, now
            op.lease_until, op.finished_at, op.updated_at = None, None, now
            session.add(audit_row(workspace_id=workspace_id, op_id=op.id, connection_id=op.connection_id,
                                  attempt=previous, action="redrive", outcome=Outcome.REDRIVEN,
                                  actor=_actor_name(actor), request={"marker": op.marker}, at=now))
            await session.flush()
            await queries.release_followers(session, op.ticket_id, now)
            number = (await session.get(Ticket, op.ticket_id)).number if op.ticket_id else None  # type: ignore[union-attr]
            return op_view(op, number)

    async def redrive_all(self, workspace_id: int, actor: Actor | str, *, connection_id: int | None = None) -> int:
        """Redrive every dead op (of one connection), oldest first; e.g. after fixing credentials."""
        _require_admin(actor, "retry failed PSA writes")
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            stmt = select(OutboxOp.id).where(OutboxOp.status == OutboxStatus.DEAD.value).order_by(OutboxOp.id)  # type: ignore[arg-type]
            if connection_id is not None:
                stmt = stmt.where(OutboxOp.connection_id == connection_id)
            ids = list((await session.exec(stmt)).all())
        for op_id in ids:
            await self.redrive(workspace_id, op_id, actor)  # type: ignore[arg-type]
        return len(ids)

    async def discard(self, workspace_id: int, op_id: int, actor: Actor | str, reason: str) -> OutboxOpView:
        """Drop an op that will not be delivered, with a reason on record; blocked followers released."""
        _require_admin(actor, "discard PSA writes")
        reason = (reason or "").strip()
        if not reason:
            raise InvalidInput("Say why this write is discarded.", hint="Add a reason, e.g. --reason 'duplicate'.",
                               field="reason")
        now = self._clock()
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            op = await self._load(session, op_id)
            if op.status not in DISCARDABLE:
                hint = ("It is being delivered right now; try again in a minute." if op.status == "inflight"
                        else "It is already finished.")
                raise Conflict(f"Write {op_id} is {op.status} and cannot be discarded.", hint=hint)
            op.status, op.finished_at, op.updated_at = OutboxStatus.DISCARDED.value, now, now
            op.last_error = f"discarded by {_actor_name(actor)}: {reason}"[:2000]
            session.add(audit_row(workspace_id=workspace_id, op_id=op.id, connection_id=op.connection_id,
                                  attempt=op.attempts, action="discard", outcome=Outcome.DISCARDED,
                                  actor=_actor_name(actor), error=reason, at=now))
            blob_id = (op.payload or {}).get("blob_id")
            if blob_id is not None:
                await session.execute(sa.delete(AttachmentBlob).where(AttachmentBlob.id == int(blob_id)))  # type: ignore[arg-type]
            await session.flush()
            await queries.release_followers(session, op.ticket_id, now)
            number = (await session.get(Ticket, op.ticket_id)).number if op.ticket_id else None  # type: ignore[union-attr]
            return op_view(op, number)

    async def counts(self, workspace_id: int) -> dict[str, int]:
        """Ops per status (pending, inflight, done, dead, blocked, discarded)."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            found = await queries.status_counts(session, workspace_id)
        return {s.value: found.get(s.value, 0) for s in OutboxStatus}

    @staticmethod
    async def _load(session: AsyncSession, op_id: int) -> OutboxOp:
        op = (await session.exec(select(OutboxOp).where(OutboxOp.id == op_id))).first()
        if op is None:
            raise NotFound(f"Write {op_id} was not found.", hint="See dead ones on the admin page Dead letters (/admin/dead-letters), "
                                                                   "every one with `deskbridge outbox list`.")
        return op
