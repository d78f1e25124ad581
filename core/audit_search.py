"""Searching the audit log (every PSA attempt, operator action and admin change; the services record the
changes themselves, core/admin_audit.py).

Filters: ticket number, who (a substring of the actor), outcome, a time range; newest first, keyset pages
by id. Rows were redacted when written; what is returned is redacted again (request and error text), so a
secret that slipped into an old row is still not shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from core.admin_audit import CHANGED
from core.errors import InvalidInput
from core.local_time import UTC_ZONE, day_bounds, workspace_zone
from core.numbers import whole
from core.outbox.audit import Outcome, redact, redact_text
from store.db import Database, Scope
from store.tables import AuditLog, OutboxOp, PsaConnection, Ticket
from store.types import utcnow

MAX_PAGE = 200
OUTCOMES = tuple(o.value for o in Outcome) + (CHANGED,)  # "changed": an admin changed a setting


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    created_at: datetime
    action: str
    outcome: str
    actor: str
    ticket_number: int | None
    op_id: int | None
    connection: str | None
    response_status: int | None
    error: str | None
    request: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditPage:
    items: list[AuditEntry]
    next_cursor: str | None
    zone: str = "UTC"  # the zone the dates were read in (the workspace's): say it beside the filters


def parse_when(text: str, *, end: bool = False, zone: ZoneInfo = UTC_ZONE) -> datetime | None:
    """A date (YYYY-MM-DD: its start, or with `end` its last instant) or an ISO date-time, read in `zone` (the
    workspace's: an admin's "2026-12-07" is their day, not UTC's) unless it carries its own offset."""
    text = text.strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            return day_bounds(date.fromisoformat(text), zone)[1 if end else 0]
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"'{text}' is not a date or time.",
                           hint="Write a date like 2026-12-07, or a time like 2026-12-07T14:30.") from None
    return value if value.tzinfo else value.replace(tzinfo=zone)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class AuditSearch:
    """Read one workspace's audit log."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self._clock = clock

    async def search(self, workspace_id: int, *, ticket: str = "", actor: str = "", outcome: str = "",
                     since: str = "", until: str = "", cursor: str | None = None, limit: int = 50) -> AuditPage:
        """Rows matching every filter given, newest first."""
        limit = max(1, min(int(limit), MAX_PAGE))
        stmt = (select(AuditLog, Ticket.number, PsaConnection.name)
                .join(OutboxOp, col(OutboxOp.id) == col(AuditLog.op_id), isouter=True)
                .join(Ticket, col(Ticket.id) == col(OutboxOp.ticket_id), isouter=True)
                .join(PsaConnection, col(PsaConnection.id) == col(AuditLog.connection_id), isouter=True))
        number = ticket.strip().lstrip("#")
        if number:
            if whole(number) is None:
                raise InvalidInput(f"'{ticket[:40]}' is not a ticket number.", hint="Write the number, e.g. 1042.",
                                   field="ticket")
            stmt = stmt.where(col(Ticket.number) == whole(number))
        if actor.strip():
            stmt = stmt.where(col(AuditLog.actor).ilike(_like(actor.strip()[:200]), escape="\\"))
        if outcome.strip():
            if outcome.strip() not in OUTCOMES:
                raise InvalidInput(f"'{outcome}' is not an outcome.", hint="Use one of: " + ", ".join(OUTCOMES) + ".",
                                   field="outcome")
            stmt = stmt.where(col(AuditLog.outcome) == outcome.strip())
        if cursor and whole(cursor) is None:
            raise InvalidInput("This page link is broken.", hint="Start again from the first page.", field="cursor")
        if cursor:
            stmt = stmt.where(col(AuditLog.id) < whole(cursor))
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            zone = await workspace_zone(session, workspace_id)  # the admin's days are the workspace's
            start, stop = parse_when(since, zone=zone), parse_when(until, end=True, zone=zone)
            if start is not None:
                stmt = stmt.where(col(AuditLog.created_at) >= start)
            if stop is not None:
                stmt = stmt.where(col(AuditLog.created_at) <= stop)
            rows = (await session.exec(stmt.order_by(col(AuditLog.id).desc()).limit(limit + 1))).all()
        items = [AuditEntry(a.id, a.created_at, a.action, a.outcome, a.actor, number_, a.op_id, conn,  # type: ignore[arg-type]
                            a.response_status, redact_text(a.error) if a.error else None, redact(a.request or {}))
                 for a, number_, conn in rows[:limit]]
        return AuditPage(items, str(items[-1].id) if len(rows) > limit else None, zone=zone.key)
