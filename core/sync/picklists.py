"""Picklist refresh (slower schedule than tickets): boards, statuses per board, priorities, types into
PicklistItem; members, companies and contacts into Member/Customer/Contact (the caches forms use).

PSA members are matched to existing chat-mapped members by e-mail, so a technician who was added by
e-mail before the PSA was connected becomes that PSA member (and keeps their chat identity links).
Items that disappear from the PSA are marked inactive, never deleted (tickets still point at them).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.base import Picklists, PsaCompany, PsaContact, PsaMember
from core.sync.mapping import SeenStatus, ensure_priority_mappings, ensure_status_mappings
from core.sync.runs import RunKind, RunStatus, SyncOutcome
from core.sync.upsert import chunks, dialect_insert, directory_ids, ensure_directory
from store.db import Scope
from store.sql import table_of
from store.tables import Contact, Customer, Member, PicklistItem

if TYPE_CHECKING:
    from core.sync.engine import SyncEngine

log = logging.getLogger(__name__)
PICKLIST_KINDS = ("board", "status", "priority", "type")


async def refresh_picklists(engine: SyncEngine, connection_id: int) -> SyncOutcome:
    """Fetch every picklist of a connection and cache it; records a `picklists` SyncRun (a failure is recorded
    and returned, never raised: the next scheduled refresh tries again)."""
    conn = await engine.connection(connection_id)
    ws = conn.workspace_id
    async with engine.recorded(conn, RunKind.PICKLISTS) as run:
        counts = run.counts
        connector = engine.connections.shared(conn)
        try:
            pl = await engine.call(counts, connector.picklists)
            members = await engine.call(counts, connector.list_members)
            companies: list[PsaCompany] = await _all_pages(engine, counts, connector.list_companies)
            contacts: list[PsaContact] = await _all_pages(engine, counts, connector.list_contacts)
            board_scoped = engine.target(conn, connector).board_scoped_statuses
            async with engine.db.write(Scope.workspace(ws)) as s:
                counts["items"] = await _store_items(s, ws, connection_id, pl, engine)
                await ensure_status_mappings(s, ws, connection_id, [
                    SeenStatus((st.board_external_id or "") if board_scoped else "", st.external_id, st.name,
                               st.closed)
                    for st in pl.statuses])
                await ensure_priority_mappings(s, ws, connection_id, {p.external_id: p.name for p in pl.priorities})
                counts["members"] = await _store_members(s, ws, connection_id, members)
                counts["companies"] = await _store_companies(s, ws, connection_id, companies)
                counts["contacts"] = await _store_contacts(s, ws, connection_id, contacts)
            return await run.finish(RunStatus.OK)
        except Exception as exc:
            failed = await run.fail(exc)
            log.warning("picklist refresh failed", extra={"connection_id": connection_id, "error": str(exc)})
            return failed
        finally:
            await connector.aclose()


async def has_picklists(engine: SyncEngine, connection_id: int) -> bool:
    """True once a connection's picklists were cached (forms and status changes need them)."""
    conn = await engine.connection(connection_id)
    t = table_of(PicklistItem)
    async with engine.db.read(Scope.workspace(conn.workspace_id)) as s:
        res = await s.execute(sa.select(t.c.id).where(t.c.workspace_id == conn.workspace_id,
                                                      t.c.connection_id == connection_id).limit(1))
        return res.first() is not None


async def _all_pages(engine: SyncEngine, counts: dict[str, int], fn: Any) -> list[Any]:
    out: list[Any] = []
    cursor: str | None = None
    while True:
        page = await engine.call(counts, fn, cursor)
        out.extend(page.items)
        cursor = page.next_cursor
        if not cursor:
            return out


async def _store_items(s: AsyncSession, ws: int, cid: int, pl: Picklists, engine: SyncEngine) -> int:
    now = engine.clock()
    rows: list[dict[str, Any]] = []

    def add(kind: str, ext: str, name: str, *, parent: str = "", active: bool = True, order: int = 0,
            data: dict[str, Any] | None = None) -> None:
        rows.append({"workspace_id": ws, "connection_id": cid, "kind": kind, "parent_external_id": parent,
                     "external_id": ext, "name": name[:200], "active": active, "sort_order": order,
                     "data": data or {}, "fetched_at": now})

    for b in pl.boards:
        add("board", b.external_id, b.name, active=b.active)
    for st in pl.statuses:
        add("status", st.external_id, st.name, parent=st.board_external_id or "", active=st.active,
            order=st.sort_order, data={"closed": st.closed, "default": st.default,
                                       "time_entry_allowed": st.time_entry_allowed})
    for p in pl.priorities:
        add("priority", p.external_id, p.name, order=p.sort_order, data={"default": p.default})
    for ty in pl.types:
        add("type", ty.external_id, ty.name, parent=ty.board_external_id or "")
    t = table_of(PicklistItem)
    for chunk in chunks(rows, 11):
        ins = dialect_insert(s, t).values(list(chunk))
        await s.execute(ins.on_conflict_do_update(
            index_elements=["connection_id", "kind", "parent_external_id", "external_id"],
            set_={c: ins.excluded[c] for c in ("name", "active", "sort_order", "data", "fetched_at")}))
    # Whatever the PSA no longer lists is inactive now (kept: tickets may still reference it).
    for kind in PICKLIST_KINDS:
        if not any(r["kind"] == kind for r in rows):
            continue  # an empty list is more likely a PSA hiccup than every item deleted
        await s.execute(sa.update(t).where(
            t.c.workspace_id == ws, t.c.connection_id == cid, t.c.kind == kind, t.c.fetched_at < now
        ).values(active=False))
    return len(rows)


async def _store_members(s: AsyncSession, ws: int, cid: int, members: Sequence[PsaMember]) -> int:
    known = await directory_ids(s, Member, cid, [x.external_id for x in members])
    emails = {x.email.strip().lower(): x for x in members if x.email and x.external_id not in known}
    if emails:  # adopt members added by e-mail before the PSA was connected (their chat links stay)
        # ORM statement on the class: the workspace-scoped session limits it to this connection's workspace.
        found = (await s.exec(select(Member).where(
            Member.workspace_id == ws, col(Member.connection_id).is_(None),
            sa.func.lower(Member.email).in_(list(emails))).order_by(col(Member.id)))).all()
        for member in found:
            psa = emails.pop((member.email or "").lower(), None)
            if psa is not None:
                member.connection_id, member.external_id = cid, psa.external_id
                s.add(member)
        await s.flush()
    await ensure_directory(s, Member, ws, cid, {
        x.external_id: {"name": x.name[:200], "identifier": (x.identifier or "")[:100] or None,
                        "email": (x.email or "").strip().lower()[:254] or None, "active": x.active}
        for x in members}, update=("name", "identifier", "email", "active"))
    return len(members)


async def _store_companies(s: AsyncSession, ws: int, cid: int, companies: Sequence[PsaCompany]) -> int:
    await ensure_directory(s, Customer, ws, cid, {
        c.external_id: {"identifier": (c.identifier or c.name)[:100], "name": c.name[:200], "active": c.active}
        for c in companies}, update=("identifier", "name", "active"))
    return len(companies)


async def _store_contacts(s: AsyncSession, ws: int, cid: int, contacts: Sequence[PsaContact]) -> int:
    customers = await directory_ids(s, Customer, cid, sorted({c.company_external_id for c in contacts
                                                              if c.company_external_id}))
    await ensure_directory(s, Contact, ws, cid, {
        c.external_id: {"name": c.name[:200], "email": (c.email or "")[:254] or None, "phone": (c.phone or "")[:64] or None,
                        "customer_id": customers.get(c.company_external_id or "")}
        for c in contacts}, update=("name", "email", "phone", "customer_id"))
    return len(contacts)
