"""Tickets gone from the PSA (deleted, or merged into another): marked deleted locally, announced once.

Used by the sync (reconcile, a targeted re-read that answers 404) and by the outbox (a write refused with a
404 is checked: if the ticket itself is gone, it leaves the queue now instead of at the next reconcile).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.notify import DomainEvent, TicketChanged
from store.db import Database, Scope
from store.enums import Origin
from store.tables import Ticket

Journal = Callable[[AsyncSession, Sequence[DomainEvent]], Awaitable[None]]  # as core/sync/apply.py's


async def mark_deleted(db: Database, workspace_id: int, connection_id: int, external_ids: Sequence[str],
                       now: datetime, *, journal: Journal | None = None) -> list[DomainEvent]:
    """Set deleted_at on the connection's tickets with these PSA ids; the TicketChanged events to announce
    (also written in the same transaction with `journal`: core/sync/journal.py)."""
    events: list[DomainEvent] = []
    if not external_ids:
        return events
    async with db.write(Scope.workspace(workspace_id)) as s:
        rows = (await s.exec(select(Ticket).where(Ticket.connection_id == connection_id,
                                                  col(Ticket.external_id).in_(list(external_ids)),
                                                  col(Ticket.deleted_at).is_(None)))).all()
        for row in rows:
            row.deleted_at, row.psa_hash = now, None
            row.version += 1
            events.append(TicketChanged(workspace_id=workspace_id, ticket_id=row.id, ticket_number=row.number,
                                        origin=Origin.PSA.value, occurred_at=now, changes={"deleted": (False, True)}))
        if journal is not None and events:
            await journal(s, events)
    return events
