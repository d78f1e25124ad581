"""Recording an attempt's outcome: one short write transaction per attempt, fenced by `attempts`.

The op row, its audit row and the local effects of a delivery (the ticket's PSA id and number, the
timeline entry's PSA id, pruning an uploaded file's bytes) commit together, and only if this attempt
still owns the op. A stale attempt (its lease expired and another worker took over) changes nothing
but its own audit row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.notify import DomainEvent, WriteDead, WriteDelivered
from core.outbox import queries
from core.outbox.audit import Outcome, audit_row
from core.outbox.delivery import Delivered
from core.outbox.ops import OpKind
from core.redact import redact_text
from store.db import Database, Scope
from store.enums import Origin, OutboxStatus
from store.tables import AttachmentBlob, OutboxOp, PsaConnection, Ticket, TimelineEntry


def dead_cause(status: int | None, error: str | None) -> str:
    """Why a write gave up, as what an admin can do about it (a 403 the worker saw as a security role's refusal
    is `permission`: AttemptResult.cause)."""
    if status in (401, 403):
        return "credentials"
    if status == 404 or "deleted in the PSA" in (error or ""):
        return "deleted"
    if status is not None and 400 <= status < 500:
        return "refused"
    return "gave_up"


@dataclass(slots=True)
class AttemptResult:
    outcome: Outcome
    action: str
    request: dict[str, Any] = field(default_factory=dict)
    duration_ms: int | None = None
    status: int | None = None
    error: str | None = None
    delivered: Delivered | None = None
    next_attempt_at: datetime | None = None
    outcome_unknown: bool = False
    connection_error: str | None = None  # saved on the connection (e.g. credentials rejected)
    breaker_opened: str | None = None  # this attempt opened the connection's breaker (one audit row)
    cause: str | None = None  # why it is dead when the status alone does not say (see dead_cause)


    def __post_init__(self) -> None:
        # PSA and library error text is stored and shown (API, CLI, chat): never with a credential in it.
        self.error = redact_text(self.error, limit=4000) if self.error else self.error
        self.connection_error = redact_text(self.connection_error, limit=2000) if self.connection_error else None
        self.breaker_opened = redact_text(self.breaker_opened) if self.breaker_opened else None


async def record(db: Database, op: OutboxOp, res: AttemptResult, now: datetime, *,
                 ticket_number: int | None = None) -> tuple[bool, DomainEvent | None]:
    """Apply the outcome if this attempt still owns the op; returns (applied, event to notify)."""
    assert op.id is not None
    event: DomainEvent | None = None
    async with db.write(Scope.workspace(op.workspace_id)) as session:
        applied = await _finish(session, op, res, now)
        outcome = res.outcome if applied else Outcome.STALE
        error = res.error if applied else f"superseded (would have been {res.outcome}) {res.error or ''}".strip()
        session.add(audit_row(workspace_id=op.workspace_id, op_id=op.id, connection_id=op.connection_id,
                              attempt=op.attempts, action=res.action, outcome=outcome, actor=op.actor,
                              request=res.request, response_status=res.status, error=error,
                              duration_ms=res.duration_ms, at=now))
        if res.breaker_opened:
            session.add(audit_row(workspace_id=op.workspace_id, op_id=None, connection_id=op.connection_id,
                                  attempt=0, action="breaker_open", outcome=Outcome.BREAKER, actor="system",
                                  error=res.breaker_opened, at=now))
        if not applied:
            return False, None
        if res.connection_error and op.connection_id is not None:
            await session.execute(sa.update(PsaConnection).where(PsaConnection.id == op.connection_id)  # type: ignore[arg-type]
                                  .values(last_error=res.connection_error[:2000]))
        number = None
        if res.outcome in (Outcome.OK, Outcome.RECONCILED) and res.delivered is not None:
            number = await _apply_delivery(session, op, res.delivered, ticket_number)
            event = WriteDelivered(workspace_id=op.workspace_id, ticket_id=op.ticket_id, ticket_number=number,
                                   origin=Origin.SYSTEM.value, occurred_at=now, op_id=op.id, kind=op.kind,
                                   external_id=res.delivered.external_id, entry_id=op.timeline_entry_id)
        elif res.outcome == Outcome.DEAD:
            await queries.block_followers(session, op)
            ticket = await session.get(Ticket, op.ticket_id) if op.ticket_id else None
            conn = await session.get(PsaConnection, op.connection_id) if op.connection_id is not None else None
            event = WriteDead(workspace_id=op.workspace_id, ticket_id=op.ticket_id,
                              ticket_number=ticket.number if ticket else None, origin=Origin.SYSTEM.value,
                              occurred_at=now, op_id=op.id, kind=op.kind, error=res.error or "unknown error",
                              entry_id=op.timeline_entry_id,
                              cause=res.cause or dead_cause(res.status, res.error),
                              connection=conn.name if conn else None)
    return True, event


async def _finish(session: AsyncSession, op: OutboxOp, res: AttemptResult, now: datetime) -> bool:
    assert op.id is not None
    common: dict[str, Any] = {"lease_until": None, "updated_at": now}
    if res.outcome in (Outcome.OK, Outcome.RECONCILED):
        d = res.delivered
        result = {"external_id": d.external_id, "reconciled": d.reconciled, "url": d.url} if d else {}
        values = {**common, "status": OutboxStatus.DONE.value, "finished_at": now, "last_error": None,
                  "last_status_code": res.status, "outcome_unknown": False, "result": result}
    elif res.outcome == Outcome.RETRY:
        values = {**common, "status": OutboxStatus.PENDING.value, "next_attempt_at": res.next_attempt_at or now,
                  "last_error": (res.error or "")[:4000], "last_status_code": res.status,
                  "outcome_unknown": res.outcome_unknown}
    elif res.outcome == Outcome.DEAD:  # the cause is kept for `explain` (the status alone misleads on Autotask)
        values = {**common, "status": OutboxStatus.DEAD.value, "finished_at": now,
                  "result": {"cause": res.cause or dead_cause(res.status, res.error)},
                  "last_error": (res.error or "")[:4000], "last_status_code": res.status,
                  "outcome_unknown": res.outcome_unknown}
    elif res.outcome == Outcome.PARKED:
        # Not attempted: the attempt is given back (no attempt spent) and the op waits.
        values = {**common, "status": OutboxStatus.PENDING.value, "attempts": op.attempts - 1,
                  "next_attempt_at": res.next_attempt_at or now}
    else:  # pragma: no cover - the worker only records the outcomes above
        raise ValueError(f"cannot record outcome {res.outcome}")
    if values["status"] in (OutboxStatus.DONE.value, OutboxStatus.DEAD.value) and (op.payload or {}).get(
            "password_ciphertext"):  # a temporary password is kept only until its reset is finished
        values["payload"] = {**op.payload, "password_ciphertext": None}
    return await queries.finish(session, op.id, op.attempts, **values)


async def _apply_delivery(session: AsyncSession, op: OutboxOp, d: Delivered, number: int | None) -> int | None:
    """Local effects of a delivered op; returns the ticket's number."""
    if op.kind != OpKind.CREATE_TICKET:
        ticket = None
    else:
        ticket = await session.get(Ticket, op.ticket_id) if op.ticket_id else None
    if ticket is not None and d.external_id and ticket.external_id is None:
        taken = (await session.exec(select(Ticket.id).where(
            Ticket.connection_id == ticket.connection_id, Ticket.external_id == d.external_id,
            Ticket.id != ticket.id))).first()
        if taken is None:  # (a sync that already imported it by marker keeps its own row)
            ticket.external_id = d.external_id
            if d.external_id.isdigit() and ticket.number is None:
                clash = (await session.exec(select(Ticket.id).where(Ticket.number == int(d.external_id)))).first()
                if clash is None:
                    ticket.number = int(d.external_id)
            session.add(ticket)
    if op.timeline_entry_id is not None and d.external_id and op.kind != OpKind.UPDATE_TICKET:
        entry = await session.get(TimelineEntry, op.timeline_entry_id)
        if entry is not None and entry.external_id is None:
            clash_e = (await session.exec(select(TimelineEntry.id).where(
                TimelineEntry.ticket_id == entry.ticket_id, TimelineEntry.kind == entry.kind,
                TimelineEntry.external_id == d.external_id))).first()
            if clash_e is None:
                entry.external_id = d.external_id
                session.add(entry)
    if op.kind == OpKind.UPLOAD_ATTACHMENT and (op.payload or {}).get("blob_id") is not None:
        await session.execute(sa.delete(AttachmentBlob).where(AttachmentBlob.id == int(op.payload["blob_id"])))  # type: ignore[arg-type]
    return ticket.number if ticket else number
