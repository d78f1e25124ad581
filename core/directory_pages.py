"""Keyset pages of a workspace's customers and members, in id order (the REST API's directory listings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlmodel import select

from store.db import Database, Scope
from store.tables import Customer, Member

MAX_PAGE = 500
Row = TypeVar("Row", Customer, Member)


@dataclass(frozen=True, slots=True)
class Page(Generic[Row]):
    items: list[Row]
    next_after: int | None  # the id to pass back for the next page; None on the last one


async def _page(db: Database, workspace_id: int, table: type[Row], after: int, limit: int) -> Page[Row]:
    limit = max(1, min(limit, MAX_PAGE))
    async with db.read(Scope.workspace(workspace_id)) as session:
        rows = list((await session.exec(
            select(table).where(table.id > after).order_by(table.id).limit(limit + 1))).all())  # type: ignore[arg-type,operator]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].id if more else None)


async def customers(db: Database, workspace_id: int, *, after: int = 0, limit: int = 100) -> Page[Customer]:
    """Customers with an id above `after`, at most `limit` (≤ 500) of them."""
    return await _page(db, workspace_id, Customer, after, limit)


async def members(db: Database, workspace_id: int, *, after: int = 0, limit: int = 100) -> Page[Member]:
    """Members (technicians) with an id above `after`, at most `limit` (≤ 500) of them."""
    return await _page(db, workspace_id, Member, after, limit)
