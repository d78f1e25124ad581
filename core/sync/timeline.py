"""The timeline half of a sync batch: notes, time entries and attachments of the tickets just written.

Echo suppression: our own writes coming back from the PSA are linked to the local entry that wrote them
(its external id is filled in) instead of being inserted again, and emit no event. Our writes carry no
tag in their text (the customer reads exactly what the technician wrote), so a record is recognised as
ours by an invisible match (`_ours`): same ticket, same kind, the same normalised text (time: minutes and
start; files: name and size), a compatible author, and a local entry not yet linked whose outbox op has
been attempted (a write never sent cannot have landed). Records carrying an earlier version's marker tag
are still linked by it, only to an entry on the same ticket of the same workspace not yet linked to
another record, and never for a note a contact wrote (an e-mail reply quoting ours). Anything else is
inserted as received.
Writes run in a savepoint; if one fails, tickets are retried one per savepoint and a ticket whose
children cannot be stored is counted bad (its content hash is cleared so the next run fetches it again).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.base import NoteVisibility, PsaNote, marker_tag, normalise_text
from core.notify import NoteAdded
from core.sync.upsert import TIMELINE_COLUMNS, built, core_execute, insert_timeline, update_timeline
from store.enums import EntryKind, Origin
from store.sql import table_of
from store.tables import OutboxOp, Ticket, TimelineEntry

if TYPE_CHECKING:
    from core.sync.apply import BatchResult, Children, SyncTarget

log = logging.getLogger(__name__)

_NOTE_KIND = {NoteVisibility.PUBLIC: EntryKind.NOTE_PUBLIC, NoteVisibility.INTERNAL: EntryKind.NOTE_INTERNAL,
              NoteVisibility.RESOLUTION: EntryKind.NOTE_RESOLUTION}
_FAMILY = {EntryKind.NOTE_PUBLIC: "note", EntryKind.NOTE_INTERNAL: "note", EntryKind.NOTE_RESOLUTION: "note",
           EntryKind.TIME_ENTRY: "time", EntryKind.ATTACHMENT: "attachment"}


async def apply_children(s: AsyncSession, target: SyncTarget, children: Mapping[str, Children],
                         ticket_ids: Mapping[str, int], numbers: Mapping[str, int | None],
                         member_ids: Mapping[str, int], contact_ids: Mapping[str, int], *, now: datetime,
                         emit: bool, result: BatchResult, quiet: frozenset[str] = frozenset()) -> None:
    """Insert new notes/time entries/attachments, update changed ones, link our own writes coming back.
    Tickets in `quiet` (their history was never read: it is their past, not news) emit no NoteAdded."""
    if not children:
        return
    ws = target.workspace_id  # Core statements below: they filter workspace_id themselves
    tids = [ticket_ids[ext] for ext in children]
    markers = sorted({m for c in children.values() for m in _markers(c) if m})
    known, by_marker = await _local_entries(s, ws, tids, markers)
    plan = _Plan(ws, now, known, by_marker, await _sent_unlinked(s, ws, tids), result)
    for ext, c in children.items():
        plan.add_children(ticket_ids[ext], c, member_ids)
    by_ticket = {tid: ext for ext, tid in ticket_ids.items()}
    inserted = await _write_plan(s, plan, by_ticket, result)
    for entry_id, tid, kind_value, ext in inserted:
        fam = _FAMILY[EntryKind(kind_value)]
        result.add({"note": "notes_added", "time": "time_entries_added", "attachment": "attachments_added"}[fam])
        meta = plan.note_meta.get((tid, kind_value, ext))
        if meta is not None and emit and by_ticket[tid] not in quiet:
            note, body = meta
            result.events.append(NoteAdded(
                workspace_id=target.workspace_id, ticket_id=tid, ticket_number=numbers.get(by_ticket[tid]),
                origin=Origin.PSA.value, occurred_at=note.created_at or now, entry_id=entry_id,
                visibility=NoteVisibility(note.visibility).value, author_name=note.author.name if note.author else None,
                body=body))


async def _local_entries(s: AsyncSession, ws: int, tids: Sequence[int], markers: Sequence[str]
                         ) -> tuple[dict[tuple[int, str, str], dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """(local entries already linked to a PSA record, by (ticket, family, external id); local entries of this
    workspace carrying each marker)."""
    tl = table_of(TimelineEntry)
    known: dict[tuple[int, str, str], dict[str, Any]] = {}
    by_marker: dict[str, list[dict[str, Any]]] = {}
    linked = built(("timeline_linked",), lambda: sa.select(
        tl.c.id, tl.c.ticket_id, tl.c.kind, tl.c.external_id, tl.c.marker, tl.c.body).where(
        tl.c.workspace_id == sa.bindparam("ws"), tl.c.ticket_id.in_(sa.bindparam("tids", expanding=True)),
        tl.c.external_id.is_not(None)))
    marked = built(("timeline_marked",), lambda: sa.select(tl.c.id, tl.c.ticket_id, tl.c.external_id, tl.c.marker).where(
        tl.c.workspace_id == sa.bindparam("ws"), tl.c.marker.in_(sa.bindparam("markers", expanding=True))
    ).order_by(tl.c.id))
    for i in range(0, len(tids), 2000):
        res = await core_execute(s, linked, {"ws": ws, "tids": list(tids[i : i + 2000])})
        for r in res:
            known[(r.ticket_id, _FAMILY.get(EntryKind(r.kind), r.kind), r.external_id)] = dict(r._mapping)
    for i in range(0, len(markers), 2000):
        res = await core_execute(s, marked, {"ws": ws, "markers": list(markers[i : i + 2000])})
        for r in res:
            by_marker.setdefault(r.marker, []).append(dict(r._mapping))
    return known, by_marker


class _Plan:
    """The timeline rows one batch will insert or update, each PSA child placed once."""

    def __init__(self, ws: int, now: datetime, known: dict[tuple[int, str, str], dict[str, Any]],
                 by_marker: dict[str, list[dict[str, Any]]], pending: dict[int, list[dict[str, Any]]],
                 result: BatchResult) -> None:
        self.ws, self.now, self.known, self.by_marker, self.pending, self.result = ws, now, known, by_marker, pending, result
        self.inserts: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.entry_ticket: dict[int, int] = {}  # entry id -> ticket id, for the updates
        self.note_meta: dict[tuple[int, str, str], tuple[PsaNote, str]] = {}

    def add_children(self, tid: int, c: Children, member_ids: Mapping[str, int]) -> None:
        """Place one ticket's notes, time entries and attachments."""
        now = self.now
        for n in c.notes:
            author = n.author
            kind = _NOTE_KIND.get(NoteVisibility(n.visibility), EntryKind.NOTE_INTERNAL)
            # A note a contact wrote is never our write, whatever tag its (quoted) text carries.
            body = self.place(tid, kind, n.external_id, n.marker, n.text, linkable=not n.author_is_contact,
                              author_ext=author.id if author else None,
                              author_member_id=member_ids.get(author.id) if author and not n.author_is_contact else None,
                              author_name=(author.name[:200] if author and author.name else None),
                              author_is_contact=n.author_is_contact, data={}, occurred_at=n.created_at or now)
            if body is not None:
                self.note_meta[(tid, kind.value, n.external_id)] = (n, body)
        for e in c.time_entries:
            self.place(tid, EntryKind.TIME_ENTRY, e.external_id, e.marker, e.notes or "",
                       author_ext=e.member.id if e.member else None,
                       author_member_id=member_ids.get(e.member.id) if e.member else None,
                       author_name=(e.member.name or "")[:200] or None if e.member else None, author_is_contact=False,
                       data={"minutes": e.minutes, "billable": e.billable,
                             "started_at": e.started_at.isoformat() if e.started_at else None},
                       occurred_at=e.started_at or now)
        for a in c.attachments:
            self.place(tid, EntryKind.ATTACHMENT, a.external_id, a.marker, a.filename, author_member_id=None,
                       author_name=None, author_is_contact=False,
                       data={"filename": a.filename, "size": a.size, "content_type": a.content_type},
                       occurred_at=a.created_at or now)

    def place(self, tid: int, kind: EntryKind, ext: str, marker: str | None, text: str, *, linkable: bool = True,
              author_ext: str | None = None, **cols: Any) -> str | None:
        """Update, link or queue one PSA child; returns the body when it is inserted as a new entry."""
        fam = _FAMILY[kind]
        text = text.replace("\x00", "")  # PostgreSQL text cannot hold NUL
        holders = self.by_marker.get(marker, []) if marker else []
        # The marker names a local entry that this record cannot be (or a contact wrote it): not ours, so
        # its text is kept as received, tag included. A marker nobody here holds is stripped as before.
        foreign = bool(marker) and kind != EntryKind.ATTACHMENT and (bool(holders) or not linkable)
        received = _as_received(text, marker) if foreign and marker else text
        old = self.known.get((tid, fam, ext))
        if old is not None:
            body = text if marker and old["marker"] == marker else received
            if old["kind"] != kind.value or old["body"] != body:
                self.updates.append({"id": old["id"], "kind": kind.value, "body": body})
                self.entry_ticket[old["id"]] = tid
            return None
        mine = next((h for h in holders if h["ticket_id"] == tid and h["external_id"] in (None, ext)), None)
        if mine is None and not marker and linkable:
            mine = _ours(self.pending.get(tid, []), kind, text, cols, author_ext)
        if mine is not None and linkable:
            # Our own write coming back from the PSA (same ticket, not yet linked elsewhere): link it, no echo.
            if mine["external_id"] is None:
                self.updates.append({"id": mine["id"], "external_id": ext})
                self.entry_ticket[mine["id"]] = tid
                mine["external_id"] = ext  # claimed: a second PSA record with this marker is someone else's
            self.result.add("linked")
            return None
        # Someone else's record (a quoted reply, a pasted note, another ticket's marker): kept as received.
        self.inserts.append({"workspace_id": self.ws, "ticket_id": tid, "kind": kind.value,
                             "origin": Origin.PSA.value, "external_id": ext, "marker": None, "body": received,
                             "recorded_at": self.now, **cols})
        return received


async def _write_plan(s: AsyncSession, plan: _Plan, by_ticket: Mapping[int, str], result: BatchResult
                      ) -> list[tuple[int, int, str, str]]:
    """Store the plan in one savepoint, or ticket by ticket when that fails; (entry id, ticket id, kind,
    external id) of each inserted entry."""
    for row in plan.inserts:
        for col in TIMELINE_COLUMNS:
            row.setdefault(col, None)
    try:
        async with s.begin_nested():
            if plan.updates:
                await update_timeline(s, plan.updates)
            return await insert_timeline(s, plan.inserts) if plan.inserts else []
    except (DBAPIError, ValueError, TypeError) as exc:
        log.warning("sync: timeline write failed; retrying ticket by ticket", extra={"error": str(exc)[:300]})
        return await _timeline_per_ticket(s, plan.ws, plan.updates, plan.inserts, plan.entry_ticket, by_ticket, result)


async def mark_history_read(s: AsyncSession, ws: int, ticket_ids: Sequence[int], now: datetime) -> None:
    """These tickets' notes, time entries and documents have been read from the PSA (core/sync/history.py)."""
    t = table_of(Ticket)  # Core: filters workspace_id itself
    stmt = built(("history_read",), lambda: sa.update(t).where(
        t.c.workspace_id == sa.bindparam("ws"), t.c.id.in_(sa.bindparam("tids", expanding=True))
    ).values(history_at=sa.bindparam("now", type_=t.c.history_at.type)))
    for i in range(0, len(ticket_ids), 5000):
        await core_execute(s, stmt, {"ws": ws, "tids": list(ticket_ids[i : i + 5000]), "now": now}, writes="ticket")


async def _timeline_per_ticket(s: AsyncSession, ws: int, updates: Sequence[dict[str, Any]],
                               inserts: Sequence[dict[str, Any]], entry_ticket: Mapping[int, int],
                               by_ticket: Mapping[int, str], result: BatchResult) -> list[tuple[int, int, str, str]]:
    """Timeline writes one ticket per savepoint: a ticket whose children cannot be stored is counted bad
    and forgets its content hash, so the next run (its cursor held below it) fetches it again."""
    ups: dict[int, list[dict[str, Any]]] = {}
    ins: dict[int, list[dict[str, Any]]] = {}
    for u in updates:
        ups.setdefault(entry_ticket[u["id"]], []).append(u)
    for row in inserts:
        ins.setdefault(row["ticket_id"], []).append(row)
    out: list[tuple[int, int, str, str]] = []
    t = table_of(Ticket)  # Core: filters workspace_id itself
    for tid in sorted(set(ups) | set(ins)):
        try:
            async with s.begin_nested():
                if ups.get(tid):
                    await update_timeline(s, ups[tid])
                got = await insert_timeline(s, ins[tid]) if ins.get(tid) else []
            out.extend(got)
        except (DBAPIError, ValueError, TypeError) as exc:
            error = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            result.bad[by_ticket[tid]] = f"timeline: {error}"
            log.warning("sync: a ticket's notes/time/attachments could not be stored",
                        extra={"external_id": by_ticket[tid], "error": error})
            await s.execute(sa.update(t).where(t.c.workspace_id == ws, t.c.id == tid).values(psa_hash=None))
    return out


def _markers(c: Children) -> Iterator[str | None]:
    """The dedupe markers found on a ticket's notes, time entries and attachments (None where there is none)."""
    yield from (n.marker for n in c.notes)
    yield from (t.marker for t in c.time_entries)
    yield from (a.marker for a in c.attachments)


async def _sent_unlinked(s: AsyncSession, ws: int, tids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Per ticket, our local entries whose write was attempted but is not yet linked to a PSA record."""
    tl, op = table_of(TimelineEntry), table_of(OutboxOp)
    stmt = built(("timeline_sent_unlinked",), lambda: sa.select(
        tl.c.id, tl.c.ticket_id, tl.c.kind, tl.c.body, tl.c.data, tl.c.external_id, op.c.payload).join(
        op, op.c.timeline_entry_id == tl.c.id).where(
        tl.c.workspace_id == sa.bindparam("ws"), tl.c.ticket_id.in_(sa.bindparam("tids", expanding=True)),
        tl.c.external_id.is_(None), tl.c.marker.is_not(None), op.c.attempts > 0).order_by(tl.c.id))
    out: dict[int, list[dict[str, Any]]] = {}
    for i in range(0, len(tids), 2000):
        res = await core_execute(s, stmt, {"ws": ws, "tids": list(tids[i : i + 2000])})
        for r in res:
            out.setdefault(r.ticket_id, []).append(dict(r._mapping))
    return out


def _ours(candidates: list[dict[str, Any]], kind: EntryKind, text: str, cols: Mapping[str, Any],
          author_ext: str | None) -> dict[str, Any] | None:
    """The first unlinked entry of ours that this PSA record is (see the module docstring). The author
    must be the member the write was sent as; a write sent without one is the PSA's API member's."""
    want = normalise_text(text)
    data = cols.get("data") or {}
    for c in candidates:
        if c["external_id"] is not None or c["kind"] != kind.value:
            continue
        mine = c["data"] or {}
        if kind == EntryKind.ATTACHMENT:
            same = mine.get("filename") == data.get("filename") and (
                data.get("size") is None or mine.get("size") == data.get("size"))
        else:
            same = normalise_text(c["body"] or "") == want
            if same and kind == EntryKind.TIME_ENTRY:
                same = mine.get("minutes") == data.get("minutes") and _same_start(mine.get("started_at"),
                                                                                 data.get("started_at"))
        payload = c["payload"] or {}
        sent_as = payload.get("author_member_external_id") or payload.get("member_external_id")
        if same and sent_as and author_ext and str(sent_as) != author_ext:
            same = False
        if same:
            return c
    return None


def _same_start(a: Any, b: Any) -> bool:
    if not a or not b:
        return True
    try:
        return abs((datetime.fromisoformat(str(a)) - datetime.fromisoformat(str(b))).total_seconds()) < 60
    except ValueError:
        return False


def _as_received(text: str, marker: str) -> str:
    """A record's text with the marker tag its connector stripped put back (it was not our write)."""
    return f"{text.rstrip()}\n\n{marker_tag(marker)}" if text.strip() else marker_tag(marker)
