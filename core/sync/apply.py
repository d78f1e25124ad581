"""Apply a batch of PSA tickets (and their notes, time entries, attachments) to the local store.

One write transaction per batch: directory rows (company -> Customer, owner -> Member, contact ->
Contact), status/priority mappings, the tickets (bulk upsert, changed rows only, fenced by `version`),
then the timeline. Domain events are built here and returned; the caller sends them after the commit.

Echo suppression: a PSA ticket carrying one of OUR markers is linked to the unsent local ticket of this
workspace (and connection) that wrote it instead of being inserted again (children: core/sync/timeline.py).
A ticket takes its PSA id as its number only when no other ticket of the workspace holds that number.
Fields of a ticket with an undelivered local change (an outbox update still pending) keep their local
values until the change reaches the PSA.

(Just over 400 lines: the batch's directory rows, mappings, protected fields and events share one transaction
and one set of lookups; the row builder `_row` and its helpers are the part to move out next.)
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.base import PsaAttachment, PsaNote, PsaTicket, PsaTimeEntry, Ref
from core.notify import DomainEvent, TicketChanged, TicketCreated
from core.sync.mapping import SeenStatus, ensure_priority_mappings, ensure_status_mappings
from core.sync.timeline import apply_children, mark_history_read
from core.sync.upsert import built, core_execute, directory_lookup, ensure_directory, upsert_tickets
from store.db import Database, Scope
from store.enums import Origin, OutboxStatus, Priority, Stage
from store.sql import table_of
from store.tables import Contact, Customer, Member, OutboxOp, Ticket
from store.tables.connection import PICKLIST_ID_MAX

log = logging.getLogger(__name__)

MAX_FENCE_RETRIES = 3
# Outbox UpdateTicket payload keys -> ticket columns that keep their local value until delivered.
_PROTECT = {
    "summary": ("subject",),
    "status_external_id": ("stage", "psa_status_id", "psa_status_name", "closed_at"),
    "priority_external_id": ("priority", "priority_rank", "psa_priority_id", "psa_priority_name"),
    "owner_external_id": ("assignee_member_id",),
    "unassign": ("assignee_member_id",),
    "board_external_id": ("board_external_id", "board_name"),
    "type_external_id": ("type_name",),
    "clear_type": ("type_name",),
    "category_external_id": ("category_external_id", "category_name", "subcategory_external_id", "subcategory_name"),
    "subcategory_external_id": ("subcategory_external_id", "subcategory_name"),
    "custom_fields": ("custom_fields",),
}
_NEW_KEYS = ("category", "subcategory", "custom_fields")  # left out of the hash while empty (hashes stay stable)
_UNDELIVERED = (OutboxStatus.PENDING.value, OutboxStatus.INFLIGHT.value, OutboxStatus.BLOCKED.value)
_EVENT_FIELDS = {"stage": "stage", "psa_status_name": "status", "priority": "priority",
                 "assignee_member_id": "assignee_member_id", "subject": "subject", "customer_id": "customer_id"}


# Writes a transaction's events in that transaction (core/sync/journal.py EventJournal.add).
Journal = Callable[[AsyncSession, Sequence[DomainEvent]], Awaitable[None]]


class BadRecord(ValueError):
    """A PSA record we cannot store (counted and logged; the rest of the batch still lands)."""


@dataclass(frozen=True, slots=True)
class Children:
    notes: Sequence[PsaNote] = ()
    time_entries: Sequence[PsaTimeEntry] = ()
    attachments: Sequence[PsaAttachment] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncTarget:
    """The connection a batch belongs to."""

    workspace_id: int
    connection_id: int
    board_scoped_statuses: bool


@dataclass
class BatchResult:
    counts: dict[str, int] = field(default_factory=dict)
    events: list[DomainEvent] = field(default_factory=list)
    bad: dict[str, str] = field(default_factory=dict)
    retry: set[str] = field(default_factory=set)  # not written for now (fence gave up): the next run retries

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


_TICKET_FIELDS = tuple(f.name for f in fields(PsaTicket))
_PLAIN = (str, int, float, bool, datetime, type(None))


def content_hash(t: PsaTicket) -> str:
    """Hash of everything we store from a PSA ticket (its change time included).

    The value of hashing `asdict(t)` with the newer keys left out while empty (stored hashes stay valid),
    without asdict's deep copies, which cost more than the rest of a first sync's phase 1 (issue 20);
    anything else than plain values, Refs and text maps (a connector's own subclass) takes the asdict path."""
    doc: dict[str, Any] = {}
    for name in _TICKET_FIELDS:
        value = getattr(t, name)
        if isinstance(value, Ref):
            doc[name] = {"id": value.id, "name": value.name}
        elif isinstance(value, _PLAIN):
            doc[name] = value
        elif isinstance(value, Mapping) and all(type(k) is str and type(v) is str for k, v in value.items()):
            doc[name] = dict(value)
        else:
            doc = asdict(t)
            break
    if type(t) is not PsaTicket:
        doc = asdict(t)
    for key in _NEW_KEYS:
        if not doc.get(key):
            doc.pop(key, None)
    blob = json.dumps(doc, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _category(t: PsaTicket) -> dict[str, str | None]:
    """The ticket's category columns. Ids are kept whole (a Halo category id is its path, PICKLIST_ID_MAX); one
    longer than that is left out rather than cut (a cut path is a category the PSA does not have), and the
    ticket is still stored."""
    cat = t.category if t.category is not None and len(t.category.id) <= PICKLIST_ID_MAX else None
    sub = t.subcategory if cat is not None and t.subcategory is not None \
        and len(t.subcategory.id) <= PICKLIST_ID_MAX else None
    return {"category_external_id": cat.id if cat else None, "category_name": (cat.name or "")[:200] if cat else None,
            "subcategory_external_id": sub.id if sub else None,
            "subcategory_name": (sub.name or "")[:200] if sub else None}


def validate(t: PsaTicket) -> None:
    """Raise BadRecord for a ticket we cannot store."""
    if not isinstance(t.external_id, str) or not t.external_id.strip() or len(t.external_id) > 64:
        raise BadRecord(f"ticket id {t.external_id!r} is not usable")
    if not isinstance(t.summary, str):
        raise BadRecord(f"ticket {t.external_id}: summary is missing")
    for name in ("company", "contact", "board", "status", "priority", "type", "owner", "category", "subcategory"):
        ref = getattr(t, name)
        too_long = len(ref.id) > 64 and name not in ("category", "subcategory") if ref is not None and \
            isinstance(ref.id, str) else False  # a long category is left out, not the ticket (_category)
        if ref is not None and (not isinstance(ref.id, str) or not ref.id or too_long):
            raise BadRecord(f"ticket {t.external_id}: {name} id {str(ref.id)[:20]!r}… is not usable")
    if t.marker is not None and len(t.marker) > 64:
        raise BadRecord(f"ticket {t.external_id}: marker is too long")
    for name in ("created_at", "updated_at", "closed_at", "respond_by", "resolve_by", "responded_at"):
        value = getattr(t, name)
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise BadRecord(f"ticket {t.external_id}: {name} is not an aware datetime")


def number_of(external_id: str) -> int | None:
    """Ticket.number is the PSA id when it is numeric."""
    return int(external_id) if external_id.isdigit() and len(external_id) <= 18 else None


def _ref_rows(refs: Mapping[str, str | None], **extra: Any) -> dict[str, dict[str, Any]]:
    return {ext: {"name": (name or f"#{ext}")[:200], **extra} for ext, name in refs.items()}


async def apply_batch(db: Database, target: SyncTarget, tickets: Sequence[PsaTicket],
                      children: Mapping[str, Children], *, now: datetime, emit: bool, force: bool = False,
                      quiet: frozenset[str] | None = frozenset(), journal: Journal | None = None) -> BatchResult:
    """Write one batch; returns counts, bad records and the events to send after the commit.

    `force` re-plans tickets even when their content hash is unchanged (webhook refreshes: their children
    are read and applied; the ticket row itself is only rewritten when its content changed, which is what
    the upsert's condition always enforced). Tickets given children count as having their history read
    (core/sync/history.py); those in `quiet` had never had it read, so their notes are the past and announce
    nothing. `quiet=None`: the stored tickets of the batch whose history was never read, as the first
    attempt's transaction finds them (the caller did not read them beforehand). `journal`: each transaction's events
    are also written in it (core/sync/journal.py: the refresh worker's events survive its death after the commit).
    """
    result = BatchResult()
    pending = list(tickets)
    for attempt in range(MAX_FENCE_RETRIES + 1):
        before = len(result.events)
        async with db.write(Scope.workspace(target.workspace_id)) as s:
            fenced, quiet = await _apply_once(s, target, pending, children, now=now, emit=emit, force=force,
                                              result=result, last=attempt == MAX_FENCE_RETRIES, quiet=quiet)
            if journal is not None and len(result.events) > before:
                await journal(s, result.events[before:])
        if not fenced:
            break
        result.add("fenced_retries")
        pending = [t for t in pending if t.external_id in fenced]
        children = {k: v for k, v in children.items() if k in fenced}
    return result


async def _apply_once(s: AsyncSession, target: SyncTarget, tickets: Sequence[PsaTicket],
                      children: Mapping[str, Children], *, now: datetime, emit: bool, force: bool,
                      result: BatchResult, last: bool, quiet: frozenset[str] | None
                      ) -> tuple[set[str], frozenset[str]]:
    ws, cid = target.workspace_id, target.connection_id
    existing = await _existing(s, target, [t.external_id for t in tickets])
    if quiet is None:  # before linking by marker: a local ticket linked now was never a PSA ticket we had
        quiet = frozenset(ext for ext, o in existing.items() if o["history_at"] is None)
    await _link_by_marker(s, target, tickets, existing)
    hashes: dict[int, str] = {}  # id(ticket) -> content hash, computed once per ticket of the batch
    plan = _to_write(tickets, existing, force=force, result=result, hashes=hashes)

    # Directory rows and mappings for everything we are about to write (the rows looked up in one read).
    every = plan
    companies = {t.company.id: t.company.name for t in every if t.company}
    authors = [n.author for c in children.values() for n in c.notes if n.author and not n.author_is_contact]
    members = {r.id: r.name for r in [t.owner for t in every if t.owner] + authors
               + [e.member for c in children.values() for e in c.time_entries if e.member]}
    contact_refs = {t.contact.id: (t.contact.name, t.company.id if t.company else None) for t in every if t.contact}
    contact_refs.update({n.author.id: (n.author.name, None) for c in children.values() for n in c.notes
                         if n.author and n.author_is_contact and n.author.id not in contact_refs})
    known = await directory_lookup(s, cid, {Customer: list(companies), Member: list(members),
                                            Contact: list(contact_refs)})
    customer_ids = await ensure_directory(s, Customer, ws, cid, {
        ext: {"identifier": (name or f"#{ext}")[:100], "name": (name or f"#{ext}")[:200]}
        for ext, name in companies.items()}, known=known[Customer])
    member_ids = await ensure_directory(s, Member, ws, cid, _ref_rows(members, active=True), known=known[Member])
    contact_ids = await ensure_directory(s, Contact, ws, cid, {
        ext: {"name": (name or f"#{ext}")[:200], "customer_id": customer_ids.get(company) if company else None}
        for ext, (name, company) in contact_refs.items()}, known=known[Contact])
    stages = await ensure_status_mappings(s, ws, cid, [
        SeenStatus(_board_key(target, t), t.status.id, t.status.name or t.status.id, bool(t.status_closed))
        for t in plan if t.status])
    prios = await ensure_priority_mappings(s, ws, cid, {t.priority.id: t.priority.name or t.priority.id
                                                        for t in plan if t.priority})
    protected = await _protected_fields(s, ws, [o["id"] for o in existing.values()])

    rows = []
    for t in plan:
        try:
            rows.append(_row(target, t, existing.get(t.external_id), stages, prios, customer_ids, member_ids,
                             contact_ids, protected, now, psa_hash=hashes.get(id(t))))
        except (BadRecord, ValueError, TypeError) as exc:
            result.bad[t.external_id] = str(exc)[:300]
            log.warning("sync: bad ticket record skipped", extra={"external_id": t.external_id, "error": str(exc)})
    await _assign_numbers(s, ws, rows, existing, result)
    written = await upsert_tickets(s, rows)
    result.bad.update(written.bad)
    fenced = set(written.fenced)
    if last and fenced:
        result.add("fenced_gave_up", len(fenced))
        result.retry.update(fenced)
        fenced = set()
    _count_written(ws, rows, existing, written.written, now=now, emit=emit, result=result)

    ticket_ids = {ext: o["id"] for ext, o in existing.items()} | written.written
    numbers = {ext: o["number"] for ext, o in existing.items()} | {r["external_id"]: r["number"] for r in rows}
    live = {ext: c for ext, c in children.items() if ext in ticket_ids and ext not in fenced and ext not in result.bad}
    await apply_children(s, target, live, ticket_ids, numbers, member_ids, contact_ids, now=now, emit=emit,
                          result=result, quiet=quiet)
    await mark_history_read(s, ws, [ticket_ids[ext] for ext in live if ext not in result.bad], now)
    return fenced, quiet


def _to_write(tickets: Sequence[PsaTicket], existing: Mapping[str, dict[str, Any]], *, force: bool,
              result: BatchResult, hashes: dict[int, str]) -> list[PsaTicket]:
    """The tickets whose content changed, skipping copies older than the one stored.

    A ticket stored with the same content hash (and not marked deleted) is left out even with `force`: the
    upsert's condition would not rewrite it, and its missing row in the answer was taken for a fence (a local
    change since the read), so a forced refresh of an unchanged ticket (a callback whose ticket was already
    current) wrote the batch four times before giving up. Its children are still applied (it is in
    `existing`), as before on the last of those attempts."""
    plan: list[PsaTicket] = []
    for t in tickets:
        old = existing.get(t.external_id)
        if old is not None:
            hashes[id(t)] = content_hash(t)
        if old is not None and old["psa_hash"] == hashes[id(t)] and old["deleted_at"] is None:
            result.add("unchanged")
            continue
        if (old is not None and old["psa_updated_at"] and t.updated_at and old["psa_updated_at"] > t.updated_at):
            result.add("stale")  # a newer copy is already stored (a webhook refresh won the race)
            continue
        plan.append(t)
    return plan


def _count_written(ws: int, rows: Sequence[dict[str, Any]], existing: Mapping[str, dict[str, Any]],
                   written: Mapping[str, int], *, now: datetime, emit: bool, result: BatchResult) -> None:
    """Count created/updated tickets and, when emitting, add their events."""
    for row in rows:
        ext = row["external_id"]
        if ext not in written:
            continue
        old = existing.get(ext)
        if old is None:
            result.add("created")
            if emit:
                result.events.append(TicketCreated(workspace_id=ws, ticket_id=written[ext],
                                                   ticket_number=row["number"], origin=Origin.PSA.value,
                                                   occurred_at=now, subject=row["subject"],
                                                   customer_id=row["customer_id"]))
            continue
        result.add("updated")
        changes = {name: (old[col], row[col]) for col, name in _EVENT_FIELDS.items() if old[col] != row[col]}
        if old["deleted_at"] is not None:
            changes["deleted"] = (True, False)
        if changes and emit:
            result.events.append(TicketChanged(workspace_id=ws, ticket_id=written[ext],
                                               ticket_number=row["number"], origin=Origin.PSA.value,
                                               occurred_at=now, changes=changes))


def _board_key(target: SyncTarget, t: PsaTicket) -> str:
    return (t.board.id if t.board else "") if target.board_scoped_statuses else ""


def _existing_stmt() -> Any:
    t = table_of(Ticket)  # a Core statement: not scoped by the session, so it filters workspace_id itself
    names = ["id", "external_id", "number", "version", "psa_hash", "psa_updated_at", "deleted_at", "closed_at",
             "history_at", *_EVENT_FIELDS, *(c for group in _PROTECT.values() for c in group)]
    return sa.select(*[t.c[n] for n in dict.fromkeys(names)]).where(
        t.c.workspace_id == sa.bindparam("ws"), t.c.connection_id == sa.bindparam("cid"),
        t.c.external_id.in_(sa.bindparam("exts", expanding=True)))


async def _existing(s: AsyncSession, target: SyncTarget, external_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    stmt = built(("sync_existing",), _existing_stmt)
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(external_ids), 5000):
        res = await core_execute(s, stmt, {"ws": target.workspace_id, "cid": target.connection_id,
                                           "exts": list(external_ids[i : i + 5000])})
        out.update({r.external_id: dict(r._mapping) for r in res})
    return out


async def _link_by_marker(s: AsyncSession, target: SyncTarget, tickets: Sequence[PsaTicket],
                          existing: dict[str, dict[str, Any]]) -> None:
    """A PSA ticket carrying our marker is the local ticket we created: give that row its PSA id.

    Only a ticket of this workspace that is not yet bound to another connection can be ours.
    """
    wanted = {t.marker: t for t in tickets if t.marker and t.external_id not in existing}
    if not wanted:
        return
    ws, cid = target.workspace_id, target.connection_id
    t = table_of(Ticket)  # Core: filters workspace_id itself
    res = await s.execute(sa.select(t.c.id, t.c.marker, t.c.number).where(
        t.c.workspace_id == ws, sa.or_(t.c.connection_id.is_(None), t.c.connection_id == cid),
        t.c.marker.in_(list(wanted)), t.c.external_id.is_(None)).order_by(t.c.id))
    linked = []
    for tid, marker, number in res.all():
        psa = wanted.pop(marker, None)
        if psa is None:
            continue  # two local rows with one marker: the first one is ours
        values: dict[str, Any] = {"connection_id": cid, "external_id": psa.external_id}
        candidate = number_of(psa.external_id)
        if number is None and candidate is not None and not await _numbers_taken(s, ws, {candidate}):
            values["number"] = candidate
        try:
            async with s.begin_nested():  # one ticket's conflict never fails the batch
                await s.execute(sa.update(t).where(t.c.workspace_id == ws, t.c.id == tid).values(values))
        except IntegrityError as exc:
            log.warning("sync: could not link a ticket by its marker",
                        extra={"external_id": psa.external_id, "error": str(exc.orig)[:300]})
            continue
        linked.append(psa.external_id)
    if linked:
        existing.update(await _existing(s, target, linked))


async def _numbers_taken(s: AsyncSession, ws: int, numbers: set[int]) -> dict[int, int]:
    """Ticket numbers already used in the workspace: number -> ticket id."""
    t = table_of(Ticket)  # Core: filters workspace_id itself
    stmt = built(("sync_numbers",), lambda: sa.select(t.c.number, t.c.id).where(
        t.c.workspace_id == sa.bindparam("ws"), t.c.number.in_(sa.bindparam("numbers", expanding=True))))
    out: dict[int, int] = {}
    wanted = sorted(numbers)
    for i in range(0, len(wanted), 5000):
        res = await core_execute(s, stmt, {"ws": ws, "numbers": wanted[i : i + 5000]})
        out.update({n: tid for n, tid in res.all()})
    return out


async def _assign_numbers(s: AsyncSession, ws: int, rows: list[dict[str, Any]],
                          existing: Mapping[str, Mapping[str, Any]], result: BatchResult) -> None:
    """A ticket shows its PSA id as its number only when no other ticket of the workspace uses it.

    Another connection's ticket, or a standalone ticket numbered before the PSA was connected, may hold
    it; then the ticket keeps the number it has (None when it never had one) and is counted.
    """
    wanted = {r["number"] for r in rows if r["number"] is not None and _unnumbered(existing.get(r["external_id"]))}
    taken = await _numbers_taken(s, ws, wanted) if wanted else {}  # a stored number stays: no need to look
    claimed: set[int] = set()
    for row in rows:
        old = existing.get(row["external_id"])
        own_id = old["id"] if old else None
        if old is not None and old["number"] is not None:
            row["number"] = old["number"]  # a number, once given, stays
        elif row["number"] is not None and (taken.get(row["number"], own_id) != own_id or row["number"] in claimed):
            log.info("sync: ticket number already used in the workspace; the ticket stays unnumbered",
                     extra={"external_id": row["external_id"], "number": row["number"]})
            result.add("number_taken")
            row["number"] = None
        if row["number"] is not None:
            claimed.add(row["number"])


def _unnumbered(old: Mapping[str, Any] | None) -> bool:
    return old is None or old["number"] is None


async def _protected_fields(s: AsyncSession, ws: int, ticket_ids: Sequence[int]) -> dict[int, set[str]]:
    """Ticket columns held by undelivered local updates (outbox ops still pending)."""
    out: dict[int, set[str]] = {}
    o = table_of(OutboxOp)  # Core: filters workspace_id itself
    stmt = built(("sync_protected",), lambda: sa.select(o.c.ticket_id, o.c.payload).where(
        o.c.workspace_id == sa.bindparam("ws"), o.c.ticket_id.in_(sa.bindparam("tids", expanding=True)),
        o.c.kind == "update_ticket", o.c.status.in_(_UNDELIVERED)))
    for i in range(0, len(ticket_ids), 5000):
        res = await core_execute(s, stmt, {"ws": ws, "tids": list(ticket_ids[i : i + 5000])})
        for tid, payload in res.all():
            for key, cols in _PROTECT.items():
                if (payload or {}).get(key) not in (None, False):
                    out.setdefault(tid, set()).update(cols)
    return out


def _row(target: SyncTarget, t: PsaTicket, old: Mapping[str, Any] | None, stages: Mapping[tuple[str, str], Stage],
         prios: Mapping[str, Priority], customers: Mapping[str, int], members: Mapping[str, int],
         contacts: Mapping[str, int], protected: Mapping[int, set[str]], now: datetime, *,
         psa_hash: str | None = None) -> dict[str, Any]:
    validate(t)
    if t.status:
        stage = stages.get((_board_key(target, t), t.status.id)) or Stage.IN_PROGRESS
    else:
        stage = Stage.CLOSED if t.status_closed else Stage.NEW
    prio = prios.get(t.priority.id, Priority.MEDIUM) if t.priority else Priority.MEDIUM
    closed_at = None
    if not stage.is_open:
        closed_at = t.closed_at or (old["closed_at"] if old else None) or t.updated_at or now
    row: dict[str, Any] = {
        "workspace_id": target.workspace_id, "number": number_of(t.external_id),
        "connection_id": target.connection_id, "external_id": t.external_id,
        "customer_id": customers.get(t.company.id) if t.company else None,
        "contact_id": contacts.get(t.contact.id) if t.contact else None,
        "subject": (t.summary.strip() or f"(no summary) #{t.external_id}")[:255],
        "description": (t.description or "").replace("\x00", ""), "priority": prio.value, "priority_rank": prio.rank,
        "stage": stage.value, "psa_status_id": t.status.id if t.status else None,
        "psa_status_name": (t.status.name or "")[:100] if t.status else None,
        "psa_priority_id": t.priority.id if t.priority else None,
        "psa_priority_name": (t.priority.name or "")[:100] if t.priority else None,
        "board_external_id": t.board.id if t.board else None,
        "board_name": (t.board.name or "")[:100] if t.board else None,
        "type_name": (t.type.name or "")[:100] if t.type else None,
        **_category(t),
        "custom_fields": {str(k)[:100]: str(v)[:1000] for k, v in dict(t.custom_fields or {}).items()},
        "assignee_member_id": members.get(t.owner.id) if t.owner else None,
        "source": Origin.PSA.value, "alert_ref": t.alert_ref, "device_ref": t.device_ref,
        "psa_respond_by": t.respond_by, "psa_resolve_by": t.resolve_by, "first_response_at": t.responded_at,
        "created_at": t.created_at or now, "updated_at": t.updated_at or now, "closed_at": closed_at,
        "psa_updated_at": t.updated_at, "psa_hash": psa_hash or content_hash(t), "deleted_at": None, "marker": t.marker,
        "version": (old["version"] + 1) if old else 1,
    }
    if old is not None:
        for col in protected.get(old["id"], ()):
            row[col] = old[col]
    return row
