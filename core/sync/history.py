"""Ticket histories (notes, time entries, documents) read apart from the tickets themselves (issue 20).

A first sync used to read three child lists of every ticket, open or closed, before the queue was whole
(50,000 tickets: 150,050 calls, ~6 minutes). Now it runs in phases, on every PSA (only the seam is used):

  1. tickets   every ticket's header fields and the PSA's SLA dates, page by page; the queue is usable
               as soon as this phase ends (the cursor moves here)
  2. history   the children of open tickets whose history is not read yet, most urgent first
  3. on demand a closed ticket's history when someone opens it (`TicketService.get` calls `load_one`)

`Ticket.history_at` records when a ticket's history was read (None: not yet). Incremental runs read the
children of a changed ticket inline as before when its history is read (or it is new to us); a ticket
whose history is still unread is left to phase 2 (open) or to the first person who opens it (closed).
Phase 2 runs at the end of every sync run, so an interrupted first sync resumes where it stopped.
History read here never notifies anyone: it is the ticket's past, not news.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.base import ChildPrefetch
from core.sync.apply import BatchResult, Children, SyncTarget
from core.sync.timeline import apply_children, mark_history_read
from core.sync.upsert import ensure_directory
from store.db import Database, Scope
from store.sql import table_of
from store.tables import Contact, Member, PsaConnection, Ticket

if TYPE_CHECKING:
    from connectors.base import PsaConnector
    from core.sync.engine import ProgressFn, SyncEngine

PHASE_TICKETS = "tickets"
PHASE_HISTORY = "history"


@dataclass(frozen=True, slots=True)
class Unread:
    """A ticket whose history is still to be read."""

    ticket_id: int
    external_id: str


def _unread(target: SyncTarget) -> sa.ColumnElement[bool]:
    t = table_of(Ticket)  # Core: filters workspace_id itself
    return sa.and_(t.c.workspace_id == target.workspace_id, t.c.connection_id == target.connection_id,
                   t.c.history_at.is_(None), t.c.external_id.is_not(None), t.c.deleted_at.is_(None))


async def unread_open(db: Database, target: SyncTarget) -> list[Unread]:
    """Open tickets of the connection whose history is unread: the most urgent first, then the newest."""
    t = table_of(Ticket)
    async with db.read(Scope.workspace(target.workspace_id)) as s:
        res = await s.execute(sa.select(t.c.id, t.c.external_id).where(_unread(target), t.c.is_open.is_(True))
                              .order_by(t.c.priority_rank, t.c.created_at.desc(), t.c.id.desc()))
        return [Unread(tid, ext) for tid, ext in res.all()]


async def count_unread_closed(db: Database, target: SyncTarget) -> int:
    """Closed tickets whose history waits until someone opens one."""
    t = table_of(Ticket)
    async with db.read(Scope.workspace(target.workspace_id)) as s:
        res = await s.execute(sa.select(sa.func.count()).select_from(t).where(
            _unread(target), sa.or_(t.c.is_open.is_(False), t.c.is_open.is_(None))))
        return int(res.scalar() or 0)


async def apply_history(db: Database, target: SyncTarget, children: Mapping[str, Children], *,
                        now: datetime) -> BatchResult:
    """Write the children of tickets already stored, in one transaction, without events; their history
    counts as read unless a ticket's children could not be stored (then the next pass tries again)."""
    result = BatchResult()
    if not children:
        return result
    ws, cid = target.workspace_id, target.connection_id
    t = table_of(Ticket)
    async with db.write(Scope.workspace(ws)) as s:
        ticket_ids: dict[str, int] = {}
        numbers: dict[str, int | None] = {}
        exts = list(children)
        for i in range(0, len(exts), 5000):
            res = await s.execute(sa.select(t.c.external_id, t.c.id, t.c.number).where(
                t.c.workspace_id == ws, t.c.connection_id == cid, t.c.external_id.in_(exts[i : i + 5000])))
            for ext, tid, number in res.all():
                ticket_ids[ext], numbers[ext] = tid, number
        live = {ext: c for ext, c in children.items() if ext in ticket_ids}
        member_ids, contact_ids = await _directory(s, target, live.values())
        await apply_children(s, target, live, ticket_ids, numbers, member_ids, contact_ids, now=now, emit=False,
                             result=result)
        await mark_history_read(s, ws, [ticket_ids[ext] for ext in live if ext not in result.bad], now)
    result.add("histories_read", len([ext for ext in live if ext not in result.bad]))
    return result


async def _directory(s: AsyncSession, target: SyncTarget, children: Iterable[Children]
                     ) -> tuple[dict[str, int], dict[str, int]]:
    """Members (note authors, time-entry members) and contacts (notes a contact wrote) named by children."""
    every = list(children)
    members = {n.author.id: n.author.name for c in every for n in c.notes if n.author and not n.author_is_contact}
    members.update({e.member.id: e.member.name for c in every for e in c.time_entries if e.member})
    contacts = {n.author.id: n.author.name for c in every for n in c.notes if n.author and n.author_is_contact}
    ws, cid = target.workspace_id, target.connection_id
    member_ids = await ensure_directory(s, Member, ws, cid, {
        ext: {"name": (name or f"#{ext}")[:200], "active": True} for ext, name in members.items()})
    contact_ids = await ensure_directory(s, Contact, ws, cid, {
        ext: {"name": (name or f"#{ext}")[:200], "customer_id": None} for ext, name in contacts.items()})
    return member_ids, contact_ids


# ---------------------------------------------------------------- phase 2 and on demand

HISTORY_BATCH = 500  # tickets whose children are written per transaction in phase 2


async def read_open(engine: SyncEngine, conn: PsaConnection, connector: PsaConnector, target: SyncTarget,
                    counts: dict[str, int], *, progress: ProgressFn | None, lost: asyncio.Event) -> dict[str, str]:
    """Phase 2: read the histories of open tickets not read yet, in batches; returns tickets that failed.

    Raises PsaError (an outage: what is written stays written, the next run resumes) or LeaseLost."""
    from core.sync.engine import LeaseLost, Progress  # the engine imports this module

    todo = await unread_open(engine.db, target)
    counts["history_closed_on_demand"] = await count_unread_closed(engine.db, target)
    bad: dict[str, str] = {}
    done = 0

    def report() -> None:
        if progress:
            progress(Progress(counts.get("pages", 0), counts.get("seen", 0),
                              counts.get("created", 0) + counts.get("updated", 0), phase=PHASE_HISTORY,
                              histories_done=done, histories_total=len(todo)))

    report()
    for i in range(0, len(todo), HISTORY_BATCH):
        batch = [u.external_id for u in todo[i : i + HISTORY_BATCH]]
        if isinstance(connector, ChildPrefetch):
            connector.expect_children(batch)  # e.g. Autotask: one query per kind for the whole batch
        children, vanished = await engine.fetch_children(connector, batch, counts)
        if vanished:
            counts["deleted"] = counts.get("deleted", 0) + await engine.mark_deleted(conn, sorted(vanished))
        result = await apply_history(engine.db, target, children, now=engine.clock())
        bad.update(result.bad)
        for k, v in result.counts.items():
            counts[k] = counts.get(k, 0) + v
        done += len(batch)
        report()
        if lost.is_set():
            raise LeaseLost("the sync lease was lost (another instance took over); stopping")
    return bad


async def load_one(engine: SyncEngine, connection_id: int, external_id: str) -> bool:
    """Read one ticket's history now if it is not read yet (someone opened it); True when it was read
    here. Raises PsaError when the PSA cannot answer (the caller shows what it has)."""
    conn = await engine.connection(connection_id)
    connector = engine.connections.shared(conn)
    try:
        target = engine.target(conn, connector)
        t = table_of(Ticket)
        async with engine.db.read(Scope.workspace(target.workspace_id)) as s:
            res = await s.execute(sa.select(t.c.id).where(_unread(target), t.c.external_id == external_id))
            if res.first() is None:
                return False
        counts: dict[str, int] = {}
        children, vanished = await engine.fetch_children(connector, [external_id], counts)
        if vanished:
            return False  # gone at the PSA: the sync's reconcile settles deletions, not a read
        result = await apply_history(engine.db, target, children, now=engine.clock())
        return not result.bad
    finally:
        await connector.aclose()
