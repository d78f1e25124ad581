"""Where queue and card SLA figures come from when Deskbridge's own SLA engine is not wired in.

`SlaInfo` is what chat views ask (core/sla/service.py implements it); `PsaDueDates` answers from the
PSA's own due dates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa
from sqlmodel import Session, select

from store.db import Database, Scope
from store.enums import Stage
from store.tables import Ticket


class SlaInfo(Protocol):
    """Remaining SLA time per ticket (negative = exceeded) and the ids of breaching tickets."""

    async def remaining(self, workspace_id: int, ticket_ids: Sequence[int], now: datetime) -> dict[int, float]:
        ...

    async def breaching_ids(self, workspace_id: int, now: datetime) -> list[int]:
        ...


@runtime_checkable
class PageSla(Protocol):
    """An SlaInfo that reads a queue page's SLA data inside the page's own read (one hop, one snapshot;
    core/queue.py QueueService.list_with, whose rows carry the ticket columns the SLA engine needs):
    `remaining_loaded(load_for_page(session, rows))` == `remaining(ids of rows)`."""

    def load_for_page(self, session: Session, rows: Sequence[Any]) -> Any:
        ...

    async def remaining_loaded(self, workspace_id: int, loaded: Any, now: datetime) -> dict[int, float]:
        ...


class PsaDueDates:
    """SlaInfo from the PSA's own due dates (respond-by until first response, then resolve-by)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def remaining(self, workspace_id: int, ticket_ids: Sequence[int], now: datetime) -> dict[int, float]:
        if not ticket_ids:
            return {}
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(Ticket).where(Ticket.id.in_(list(ticket_ids))))).all()  # type: ignore[union-attr]
        out: dict[int, float] = {}
        for t in rows:
            due = _due(t)
            if due is not None:
                out[t.id] = (due - now).total_seconds()  # type: ignore[index]
        return out

    async def breaching_ids(self, workspace_id: int, now: datetime) -> list[int]:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(Ticket).where(
                Ticket.stage.in_([s.value for s in Stage if s.is_open]),  # type: ignore[attr-defined]
                sa.or_(Ticket.psa_respond_by.is_not(None), Ticket.psa_resolve_by.is_not(None))))).all()  # type: ignore[union-attr]
        return [t.id for t in rows if (d := _due(t)) is not None and d <= now]  # type: ignore[misc]


def _due(t: Ticket) -> datetime | None:
    if not Stage(t.stage).is_open:
        return None
    if t.first_response_at is None and t.psa_respond_by is not None:
        return t.psa_respond_by
    return t.psa_resolve_by
