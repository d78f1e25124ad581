"""Picklist refresh (slower schedule than tickets): boards, statuses per board, priorities, types into
PicklistItem; members, companies and contacts into Member/Customer/Contact (the caches forms use).

PSA members are matched to existing chat-mapped members by e-mail, so a technician who was added by
e-mail before the PSA was connected becomes that PSA member (and keeps their chat identity links).
Items that disappear from the PSA are marked inactive, never deleted (tickets still point at them).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.base import Picklists, PsaCompany, PsaContact, PsaMember
from connectors.errors import PsaAuthError, PsaError
from core.sync.mapping import SeenStatus, ensure_priority_mappings, ensure_status_mappings
from core.sync.runs import RunKind, RunStatus, SyncOutcome
from core.sync.upsert import chunks, dialect_insert, directory_ids, ensure_directory
from store.db import Scope
from store.sql import table_of
from store.tables import Contact, Customer, Member, PicklistItem
from store.tables.connection import PICKLIST_ID_MAX

if TYPE_CHECKING:
    from core.sync.engine import SyncEngine

log = logging.getLogger(__name__)
# "subtype": a subtype its type allows (parent: the type's id; Feature.TYPE_SUBTYPES); "item": an item that
# type and subtype allow (parent "type:subtype"). ConnectWise's types are board records, so the type's id
# also names its board.
PICKLIST_KINDS = ("board", "status", "priority", "type", "category", "subcategory", "subtype", "item",
                  "custom_field", "field_value")
T = TypeVar("T")


async def refresh_picklists(engine: SyncEngine, connection_id: int) -> SyncOutcome:
    """Fetch and cache every picklist of a connection, each on its own; records a `picklists` SyncRun.

    One part failing (a board's types, the contacts) never blocks the others: what could be read is stored,
    what failed keeps its last good value and is named with its reason in the run (`deskbridge sync status`),
    which is then `partial`. Refused credentials fail the run (every part would fail alike). A failure is
    recorded and returned, never raised: the next scheduled refresh tries again."""
    conn = await engine.connection(connection_id)
    ws = conn.workspace_id
    async with engine.recorded(conn, RunKind.PICKLISTS) as run:
        counts = run.counts
        problems: dict[str, str] = {}
        connector = engine.connections.shared(conn)
        try:
            pl = await _part(problems, "boards, statuses, priorities and types", engine.call(counts, connector.picklists))
            members = await _part(problems, "members", engine.call(counts, connector.list_members))
            companies = await _part(problems, "companies", _all_pages(engine, counts, connector.list_companies))
            contacts = await _part(problems, "contacts", _all_pages(engine, counts, connector.list_contacts))
            board_scoped = engine.target(conn, connector).board_scoped_statuses
            if pl is not None:
                problems.update(pl.problems)
                async with engine.db.write(Scope.workspace(ws)) as s:
                    counts["items"] = await _store_items(s, ws, connection_id, pl, engine)
                    await ensure_status_mappings(s, ws, connection_id, [
                        SeenStatus((st.board_external_id or "") if board_scoped else "", st.external_id, st.name,
                                   st.closed)
                        for st in pl.statuses])
                    await ensure_priority_mappings(s, ws, connection_id,
                                                   {p.external_id: p.name for p in pl.priorities})
            stores: list[tuple[str, Sequence[Any] | None, Callable[[AsyncSession, int, int, Any], Awaitable[int]]]] = [
                ("members", members, _store_members), ("companies", companies, _store_companies),
                ("contacts", contacts, _store_contacts)]
            for name, rows, store in stores:
                if rows is None:
                    continue
                async with engine.db.write(Scope.workspace(ws)) as s:
                    counts[name] = await store(s, ws, connection_id, rows)
        except Exception as exc:
            failed = await run.fail(exc)
            log.warning("picklist refresh failed", extra={"connection_id": connection_id, "error": str(exc)})
            return failed
        finally:
            await connector.aclose()
        if problems:
            log.warning("picklist refresh partly failed", extra={"connection_id": connection_id,
                                                                 "problems": sorted(problems)})
            counts["problems"] = len(problems)
            return await run.finish(RunStatus.PARTIAL, error=describe_problems(problems))
        return await run.finish(RunStatus.OK)


def describe_problems(problems: dict[str, str]) -> str:
    """What could not be read, each with its reason; the rest was stored and the last good value is kept."""
    parts = "; ".join(f"{what}: {why}" for what, why in sorted(problems.items()))
    return f"Could not read {parts}. Everything else was refreshed; for these the last good values are kept."


async def _part(problems: dict[str, str], what: str, call: Awaitable[T]) -> T | None:
    """One part of the refresh: its value, or None with the reason noted (credentials refused: raised)."""
    try:
        return await call
    except PsaAuthError:
        raise
    except PsaError as exc:
        problems[what] = str(exc)
        return None


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
        add("board", b.external_id, b.name, active=b.active,
            data={"requires": sorted(b.create_requires)} if b.create_requires else None)
    for st in pl.statuses:
        add("status", st.external_id, st.name, parent=st.board_external_id or "", active=st.active,
            order=st.sort_order, data={"closed": st.closed, "default": st.default,
                                       "time_entry_allowed": st.time_entry_allowed})
    for p in pl.priorities:
        add("priority", p.external_id, p.name, order=p.sort_order, data={"default": p.default})
    for ty in pl.types:
        add("type", ty.external_id, ty.name, parent=ty.board_external_id or "")
    for c in pl.categories:
        if len(c.external_id) > PICKLIST_ID_MAX or len(c.parent_external_id or "") > PICKLIST_ID_MAX:
            continue  # longer than any column keeps whole: never offered, so never cut and sent wrong
        add("subcategory" if c.parent_external_id else "category", c.external_id, c.name,
            parent=c.parent_external_id or "", active=c.active, order=c.sort_order,
            data=None if c.selectable else {"selectable": False})  # a parent the PSA does not take alone
    subtypes: dict[tuple[str, str], tuple[str, bool, str]] = {}  # any combination naming it allows the pair
    for a in pl.associations:
        key = (a.type_external_id, a.subtype_external_id)
        subtypes[key] = (a.subtype_name, a.active, a.board_external_id)
        if a.item_external_id is not None:
            add("item", a.item_external_id, a.item_name or a.item_external_id, parent=":".join(key),
                active=a.active and a.item_active, data={"board": a.board_external_id})
    for (type_id, sub_id), (name, active, board) in subtypes.items():
        add("subtype", sub_id, name, parent=type_id, active=active, data={"board": board})
    for name, values in pl.field_choices.items():  # e.g. Halo's category_2: the values a create may send
        for i, value in enumerate(values):
            if len(value) <= PICKLIST_ID_MAX and len(name) <= PICKLIST_ID_MAX:
                add("field_value", value, value, parent=name, order=i)
    for f in pl.custom_fields:  # the PSA's own ticket fields, by name: what admins may show on cards
        add("custom_field", f.name[:64], f.label, active=f.active,
            data={"required": f.required, "customer_visible": f.customer_visible, "read_only": f.read_only})
    t = table_of(PicklistItem)
    for chunk in chunks(rows, 11):
        ins = dialect_insert(s, t).values(list(chunk))
        await s.execute(ins.on_conflict_do_update(
            index_elements=["connection_id", "kind", "parent_external_id", "external_id"],
            set_={c: ins.excluded[c] for c in ("name", "active", "sort_order", "data", "fetched_at")}))
    # Whatever the PSA no longer lists is inactive now (kept: tickets may still reference it). Only for what
    # was read in full: a board whose statuses or types could not be read keeps its last good ones.
    for kind in PICKLIST_KINDS:
        if kind not in pl.complete and not (kind in ("category", "subcategory") and "category" in pl.complete):
            continue
        if not any(r["kind"] == kind for r in rows):
            continue  # an empty list is more likely a PSA hiccup than every item deleted
        stale = sa.and_(t.c.workspace_id == ws, t.c.connection_id == cid, t.c.kind == kind, t.c.fetched_at < now)
        if kind in ("status", "type") and pl.incomplete_boards:
            stale = sa.and_(stale, t.c.parent_external_id.notin_(sorted(pl.incomplete_boards)))
        await s.execute(sa.update(t).where(stale).values(active=False))
    return len(rows)


async def _store_members(s: AsyncSession, ws: int, cid: int, members: Sequence[PsaMember]) -> int:
    """People become (or stay) technicians; the PSA's API members are kept inactive (they write what
    integrations send, Deskbridge's included, and are nobody's to assign or link)."""
    known = await directory_ids(s, Member, cid, [x.external_id for x in members])
    emails = {x.email.strip().lower(): x for x in members if x.email and x.external_id not in known and not x.api}
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
                        "email": (x.email or "").strip().lower()[:254] or None, "active": x.active and not x.api}
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
