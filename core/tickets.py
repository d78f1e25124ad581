"""TicketService: create, read, change and comment on tickets.

(Over 400 lines: every ticket write lives here so that each keeps "row + timeline + outbox op in one
transaction"; creation (`_create` and its checks) and attachments are the parts to split out next.)

Every change writes the local row, a timeline entry and (for PSA-backed tickets) an outbox op in one
transaction, so nothing is half-written and no PSA write is lost. Nothing here calls a PSA; opening a PSA
ticket whose history was never read (a closed ticket after a first sync) asks the injected `history` reader
(core/sync/history.py) for it first, and shows what is stored if the PSA cannot answer in time.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.base import Capabilities, Feature
from core import card_fields, categories, create_fields, ticket_refs
from core.context import Actor
from core.control_chars import drop_controls
from core.errors import Conflict, DeskbridgeError, InvalidInput, NotFound, PermissionDenied
from core.hints import CUSTOMER_NOT_FOUND, MEMBER_NOT_FOUND
from core.local_time import workspace_zone
from core.notify import NoteAdded, Notifier, TicketChanged, TicketCreated
from core.outbox.ops import (
    AddNote,
    AddTimeEntry,
    CreateTicket,
    UpdateTicket,
    UploadAttachment,
    enqueue,
    new_marker,
)
from core.status import ResolvedStatus, parse_priority, psa_priority_for, resolve_status
from core.ticket_lookup import build_detail, load_header, load_ticket, names_for, summary_from
from core.views import TicketDetail, TicketHeader, TimelineItem
from store.db import Database
from store.enums import EntryKind, Origin, Priority, Stage
from store.tables import (
    AttachmentBlob,
    Contact,
    Customer,
    Member,
    PicklistItem,
    PsaConnection,
    Ticket,
    TimelineEntry,
    Workspace,
)
from store.types import utcnow

MAX_SUBJECT_CHARS = 255
MAX_DESCRIPTION_CHARS = 100_000
MAX_NOTE_CHARS = 30_000
MAX_TIME_MINUTES = 24 * 60
STANDALONE_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
KEEP: Any = object()  # update(): leave the assignee as it is
DEFAULT_CAPABILITIES = Capabilities(
    features=frozenset({Feature.RESOLUTION_NOTES, Feature.TIME_ENTRIES, Feature.ATTACHMENTS, Feature.ASSIGNMENT}),
    max_attachment_bytes=STANDALONE_MAX_ATTACHMENT_BYTES,
    max_summary_chars=MAX_SUBJECT_CHARS,
    max_note_chars=MAX_NOTE_CHARS,
)

_VISIBILITY_KIND = {
    "public": EntryKind.NOTE_PUBLIC,
    "internal": EntryKind.NOTE_INTERNAL,
    "resolution": EntryKind.NOTE_RESOLUTION,
}


_ONE_LINE = frozenset({"subject", "file name"})  # one-line fields in every PSA


def visible(text: str) -> bool:
    """Whether the text shows anything: more than whitespace, format characters (zero-width space, joiner,
    BOM, soft hyphen: Unicode category Cf) and control characters (Cc)."""
    return any(not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc") for ch in text)


_BIDI = dict.fromkeys(map(ord, "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))


def _file_name(filename: str) -> str:
    """A file name that shows what the file is: no path parts, no bidirectional controls (a right-to-left override
    shows `invoice<RLO>gpj.exe` as "invoiceexe.jpg"), never only dots or blanks."""
    name = _clean_text(filename, field="file name", limit=255).replace("/", "_").replace("\\", "_")
    name = name.translate(_BIDI).strip()
    return name if name.strip(". ") else "file"


def _clean_text(value: str, *, field: str, limit: int, required: bool = True) -> str:
    text = drop_controls(value or "", one_line=field in _ONE_LINE).strip()
    if required and not visible(text):  # zero-width characters alone look blank wherever the text is shown
        raise InvalidInput(f"The {field} is empty.", hint=f"Write a {field} and try again.", field=field)
    if len(text) > limit:
        raise InvalidInput(
            f"The {field} is {len(text):,} characters long; the limit is {limit:,}.",
            hint="Shorten it, or attach the full text as a file.",
            field=field,
        )
    return text


log = logging.getLogger(__name__)

HistoryReader = Callable[[int, str], Awaitable[bool]]
Within = Callable[[AsyncSession, Ticket], Awaitable[None]]  # runs in a create's transaction (TicketService.create)
"""(connection id, PSA ticket id) -> read that ticket's notes, time entries and documents now (SyncService)."""
HISTORY_WAIT_S = 10.0


class TicketService:
    """All ticket operations every surface calls."""

    def __init__(
        self,
        db: Database,
        *,
        capabilities: Callable[[str], Capabilities] | None = None,
        clock: Callable[[], datetime] = utcnow,
        notifier: Notifier | None = None,
        history: HistoryReader | None = None,
    ) -> None:
        self.db = db
        self._history = history
        self._capabilities = capabilities or (lambda kind: DEFAULT_CAPABILITIES)
        self._clock = clock
        # Standalone tickets (no PSA) have no sync or outbox delivery to announce them: their creation and
        # reassignment are told to the surfaces (dispatch channels, App Home) from here, after the commit.
        self.notifier = notifier

    # ------------------------------------------------------------ helpers

    async def _caps(self, session: AsyncSession, ticket: Ticket) -> Capabilities:
        if ticket.connection_id is None:
            return DEFAULT_CAPABILITIES
        conn = await session.get(PsaConnection, ticket.connection_id)
        return self._capabilities(conn.kind) if conn else DEFAULT_CAPABILITIES

    @staticmethod
    def _require_member(actor: Actor, what: str) -> None:
        if not actor.is_member:
            raise PermissionDenied(
                f"Only technicians can {what}.", hint="Ask your MSP's technician to do this for you."
            )

    async def _member_external_id(self, session: AsyncSession, ticket: Ticket, member_id: int | None) -> str | None:
        if member_id is None or ticket.connection_id is None:
            return None
        member = await session.get(Member, member_id)
        if member and member.connection_id == ticket.connection_id:
            return member.external_id
        return None

    def _entry(self, actor: Actor, ticket: Ticket, kind: EntryKind, *, body: str = "", data: dict | None = None,
               marker: str | None = None, author: Member | None = None) -> TimelineEntry:
        return TimelineEntry(
            workspace_id=actor.workspace_id,
            ticket_id=ticket.id,  # type: ignore[arg-type]
            kind=kind,
            origin=actor.origin,
            marker=marker,
            author_member_id=actor.member_id,
            author_name=author.name if author else actor.display,
            body=body,
            data=data or {},
            occurred_at=self._clock(),
        )

    def _touch(self, ticket: Ticket) -> None:
        ticket.updated_at = self._clock()
        ticket.version += 1

    def _enqueue(self, session: AsyncSession, actor: Actor, ticket: Ticket, payload: object,
                 entry: TimelineEntry | None = None, marker: str | None = None) -> None:
        if ticket.connection_id is None:
            return
        enqueue(
            session,
            workspace_id=actor.workspace_id,
            connection_id=ticket.connection_id,
            payload=payload,  # type: ignore[arg-type]
            ticket_id=ticket.id,
            actor=actor.display,
            author_member_id=actor.member_id,
            timeline_entry_id=entry.id if entry else None,
            marker=marker,
        )

    async def _detail(self, session: AsyncSession, actor: Actor, ticket: Ticket) -> TicketDetail:
        return await build_detail(session, ticket, internal=actor.is_member)

    async def _author(self, session: AsyncSession, actor: Actor) -> Member | None:
        return await session.get(Member, actor.member_id) if actor.member_id else None

    # ------------------------------------------------------------ reads

    async def get(self, actor: Actor, ref: int | str) -> TicketDetail:
        """One ticket with its timeline (internal entries hidden from non-members); a PSA ticket whose
        history was never read has it read first (at most HISTORY_WAIT_S, then what is stored is shown)."""
        async with self.db.read(actor.scope) as session:
            ticket = await load_ticket(session, actor, ref)
            if self._history is None or ticket.history_at is not None or ticket.connection_id is None \
                    or ticket.external_id is None:
                return await self._detail(session, actor, ticket)
            unread = (ticket.connection_id, ticket.external_id)
        try:
            await asyncio.wait_for(self._history(*unread), HISTORY_WAIT_S)
        except Exception:  # noqa: BLE001 - the PSA is down or slow: show what is stored, read it next time
            log.warning("could not read a ticket's history from the PSA; showing what is stored",
                        extra={"connection_id": unread[0], "external_id": unread[1]}, exc_info=True)
        async with self.db.read(actor.scope) as session:
            return await self._detail(session, actor, await load_ticket(session, actor, ref))

    async def header(self, actor: Actor, ref: int | str) -> TicketHeader:
        """A ticket's summary and board only (forms): one one-hop query with its names, no timeline, no PSA."""
        header = await load_header(self.db, actor, ref)
        if header is not None:
            return header
        async with self.db.read(actor.scope) as session:  # a PSA name (cw-1002): resolved through its connection
            ticket = await load_ticket(session, actor, ref)
            customers, members = await names_for(session, [ticket])
            summary = summary_from(ticket, customers.get(ticket.customer_id) if ticket.customer_id else None,
                                   members.get(ticket.assignee_member_id) if ticket.assignee_member_id else None,
                                   await ticket_refs.prefixes(session, ticket.workspace_id))
            return TicketHeader(summary=summary, board_external_id=ticket.board_external_id)

    async def timeline(self, actor: Actor, ref: int | str) -> tuple[TimelineItem, ...]:
        return (await self.get(actor, ref)).timeline

    async def status_history(self, actor: Actor, ref: int | str) -> tuple[TimelineItem, ...]:
        items = await self.timeline(actor, ref)
        return tuple(i for i in items if i.kind == EntryKind.STATUS_CHANGE)

    # ------------------------------------------------------------ create

    async def create(self, actor: Actor, **fields: Any) -> TicketDetail:
        """Create a ticket: numbered locally when standalone, queued for the PSA when PSA-backed (see _create).

        A standalone ticket is announced at once (TicketCreated); a PSA-backed one when the PSA has it.
        """
        return await self.create_within(actor, None, **fields)

    async def create_within(self, actor: Actor, within: Within | None, **fields: Any) -> TicketDetail:
        """`create`, with `within` run in the same transaction once the ticket has its id (the mail intake records
        there which ticket a mail made, so a crash can never leave a ticket its mail does not know)."""
        detail = await self._create(actor, within, **fields)
        s = detail.summary
        if s.connection_id is None and self.notifier is not None:
            await self.notifier.notify(TicketCreated(
                workspace_id=actor.workspace_id, ticket_id=s.id, ticket_number=s.number, origin=actor.origin.value,
                occurred_at=self._clock(), subject=s.subject, customer_id=s.customer_id))
        return detail

    async def _create(self, actor: Actor, within: Within | None = None, **fields: Any) -> TicketDetail:
        async with self.db.write(actor.scope) as session:
            ticket = await self.create_in(session, actor, **fields)
            if within is not None:
                await session.flush()
                await within(session, ticket)
            return await self._detail(session, actor, ticket)

    async def create_in(
        self,
        session: AsyncSession,
        actor: Actor,
        *,
        subject: str,
        description: str = "",
        customer_id: int | None = None,
        contact_id: int | None = None,
        contact_email: str | None = None,
        priority: Priority | str = Priority.MEDIUM,
        assignee_member_id: int | None = None,
        connection_id: int | None = None,
        board_external_id: str | None = None,
        type_name: str | None = None,
        type_external_id: str | None = None,
        alert_ref: str | None = None,
        device_ref: str | None = None,
        extra_fields: Mapping[str, str] | None = None,  # values of board-required fields a ticket has no place for
        category: str | None = None, subcategory: str | None = None,  # core/categories.py
    ) -> Ticket:
        """Create a ticket in the caller's write transaction (`create` opens one; core/ticket_batch.py shares one):
        numbered when standalone, queued when PSA-backed, what the PSA requires checked first (core/create_fields.py)."""
        extras = _clean_extras(extra_fields)
        self._require_member(actor, "create tickets here") if actor.origin != Origin.API else None
        prio = parse_priority(priority)
        customer_id = _scoped_customer(actor, customer_id)
        if await session.get(Workspace, actor.workspace_id) is None:
            raise NotFound(f"Workspace {actor.workspace_id} does not exist.",
                           hint="List workspaces with `deskbridge workspace list`.")
        conn = await self._connection(session, actor, connection_id)
        caps = self._capabilities(conn.kind) if conn else DEFAULT_CAPABILITIES
        subject_clean = _clean_text(subject, field="subject", limit=min(MAX_SUBJECT_CHARS, caps.max_summary_chars))
        desc = _clean_text(description, field="description", limit=MAX_DESCRIPTION_CHARS, required=False)
        customer, contact, assignee = await _parties(
            session, conn, caps, customer_id=customer_id, contact_id=contact_id, contact_email=contact_email,
            assignee_member_id=assignee_member_id)
        contact_id = contact.id if contact else None
        target, psa_prio = None, None
        cat = await categories.resolve_given(session, conn, caps, category=category, subcategory=subcategory)
        if conn:
            extras = await create_fields.listed_extras(session, conn, extras)  # Halo's category_2..4: listed only
            psa_prio = await psa_priority_for(session, conn.id, prio)  # type: ignore[arg-type]
            given = {name for name, value in (("company_external_id", customer), ("contact_external_id", contact),
                                              ("owner_external_id", assignee), ("description", desc),
                                              ("priority_external_id", psa_prio),
                                              ("category_external_id", cat.category_external_id)) if value}
            target = await create_fields.resolve(session, conn, caps, board=board_external_id,
                                                 type_external_id=type_external_id, type_name=type_name,
                                                 given=frozenset(given | {f"custom:{name}" for name in extras}))
            board_external_id, type_name = target.board_external_id, target.type_name or type_name
            _require_priority(conn, caps, psa_prio, prio)
        now = self._clock()
        ticket = Ticket(
            workspace_id=actor.workspace_id, connection_id=conn.id if conn else None,
            number=None if conn else await self._next_number(session, actor.workspace_id),
            customer_id=customer.id if customer else None, contact_id=contact_id,
            subject=subject_clean, description=desc, priority=prio.value, priority_rank=prio.rank,
            stage=Stage.NEW.value, psa_status_name=Stage.NEW.label,
            assignee_member_id=assignee.id if assignee else None, source=actor.origin.value,
            board_external_id=board_external_id, board_name=target.board_name if target else None,
            type_name=type_name, alert_ref=alert_ref, device_ref=device_ref, **cat.columns(),
            created_at=now, updated_at=now, marker=new_marker() if conn else None,
            history_at=now if conn else None,  # born here: its whole history is ours already
        )
        session.add(ticket)
        await session.flush()
        if conn:
            self._enqueue(session, actor, ticket, CreateTicket(
                summary=subject_clean, description=desc,
                company_external_id=customer.external_id if customer else None,
                contact_external_id=contact.external_id if contact else None,
                board_external_id=board_external_id,
                type_external_id=target.type_external_id if target else None,
                priority_external_id=psa_prio[0] if psa_prio else None,
                owner_external_id=assignee.external_id if assignee else None,
                **cat.ids(),
                extra_fields={k: v for k, v in extras.items() if target is not None and f"custom:{k}" in target.requires},
            ), marker=ticket.marker)
        return ticket

    async def _connection(self, session: AsyncSession, actor: Actor, connection_id: int | None) -> PsaConnection | None:
        if connection_id is not None:
            conn = await session.get(PsaConnection, connection_id)
            if conn is None:
                raise NotFound(f"Connection {connection_id} was not found.",
                               hint="List connections with `deskbridge connection list`.")
            return conn
        return (
            await session.exec(
                select(PsaConnection).where(PsaConnection.is_default == sa.true(), PsaConnection.enabled == sa.true())
            )
        ).first()

    async def _next_number(self, session: AsyncSession, workspace_id: int) -> int:
        stmt = (
            sa.update(Workspace)
            .where(col(Workspace.id) == workspace_id)
            .values(next_ticket_number=col(Workspace.next_ticket_number) + 1)
            .returning(col(Workspace.next_ticket_number))
        )
        value = (await session.execute(stmt)).scalar_one()
        return int(value) - 1

    # ------------------------------------------------------------ changes

    async def change_status(self, actor: Actor, ref: int | str, status: str) -> TicketDetail:
        """Move a ticket to a status valid on its board (a PSA status name or a stage)."""
        return await self.update(actor, ref, status=status)

    async def change_priority(self, actor: Actor, ref: int | str, priority: Priority | str) -> TicketDetail:
        return await self.update(actor, ref, priority=priority)

    async def assign(self, actor: Actor, ref: int | str, member_id: int | None) -> TicketDetail:
        """Assign to a technician, or unassign with None (a standalone ticket's change is announced at once)."""
        return await self.update(actor, ref, assignee_member_id=member_id)

    async def update(self, actor: Actor, ref: int | str, *, status: str | None = None,
                     priority: Priority | str | None = None, assignee_member_id: int | None | object = KEEP,
                     category: str | None = None, subcategory: str | None = None,
                     custom_fields: Mapping[str, str] | None = None) -> TicketDetail:
        """Change status, priority, assignee and/or category all or nothing: every value is checked before
        anything is changed, then the row, one timeline entry per change and their outbox ops are written in
        one transaction. A standalone ticket's reassignment is announced after the commit. A category change
        names its subcategory too (none given: the subcategory is cleared); "" clears both."""
        if status is not None or priority is not None or category is not None or subcategory is not None or \
                custom_fields:
            self._require_member(actor, "change a ticket's status or priority")
        if assignee_member_id is not KEEP:
            self._require_member(actor, "assign tickets")
        prio = parse_priority(priority) if priority is not None else None
        reassigned: tuple[int | None, int | None] | None = None
        async with self.db.write(actor.scope) as session:
            ticket = await load_ticket(session, actor, ref, for_update=True)
            # 1. Validate everything (nothing is changed until every value is known to be acceptable).
            psa_prio = await self._priority_target(session, ticket, prio) if prio is not None else None
            member, ext = (None, None)
            if assignee_member_id is not KEEP and assignee_member_id != ticket.assignee_member_id:
                member, ext = await self._assignee_target(session, ticket, assignee_member_id)  # type: ignore[arg-type]
            resolved = None
            if status is not None:
                resolved = await resolve_status(session, connection_id=ticket.connection_id,
                                                board_external_id=ticket.board_external_id, text=status)
            cat, fields = None, None
            conn = await session.get(PsaConnection, ticket.connection_id) if ticket.connection_id else None
            if custom_fields:
                fields = await card_fields.check_values(session, conn, custom_fields)
            if category is not None or subcategory is not None:
                caps = self._capabilities(conn.kind) if conn else DEFAULT_CAPABILITIES
                cat = await categories.resolve(
                    session, conn, caps, subcategory=subcategory,
                    category=ticket.category_external_id if category is None else category)
            # 2. Apply, in this one transaction.
            if prio is not None and ticket.priority != prio.value:
                await self._set_priority(session, actor, ticket, prio, psa_prio)
            if assignee_member_id is not KEEP and assignee_member_id != ticket.assignee_member_id:
                reassigned = (ticket.assignee_member_id, assignee_member_id)  # type: ignore[assignment]
                await self._set_assignee(session, actor, ticket, member, ext)
            if resolved is not None:
                await self._set_status(session, actor, ticket, resolved)
            if cat is not None:
                await self._set_category(session, actor, ticket, cat)
            if fields:
                await self._set_custom_fields(session, actor, ticket, fields)
            detail = await self._detail(session, actor, ticket)
        s = detail.summary
        if reassigned is not None and s.connection_id is None and self.notifier is not None:
            await self.notifier.notify(TicketChanged(
                workspace_id=actor.workspace_id, ticket_id=s.id, ticket_number=s.number, origin=actor.origin.value,
                occurred_at=self._clock(), changes={"assignee_member_id": reassigned}))
        return detail

    async def _set_category(self, session: AsyncSession, actor: Actor, ticket: Ticket,
                            cat: categories.ResolvedCategory) -> None:
        """The category pair, written with one internal timeline entry (CATEGORY_CHANGE, "from"/"to" labelled as
        the card shows them) and queued together (the PSA checks the pair as one)."""
        if (ticket.category_external_id, ticket.subcategory_external_id) == (cat.category_external_id,
                                                                           cat.subcategory_external_id):
            return
        before = _category_label(ticket.category_name, ticket.subcategory_name)
        ticket.category_external_id, ticket.category_name = cat.category_external_id, cat.category_name
        ticket.subcategory_external_id, ticket.subcategory_name = cat.subcategory_external_id, cat.subcategory_name
        self._touch(ticket)
        entry = self._entry(actor, ticket, EntryKind.CATEGORY_CHANGE, data={
            "fields": ["category", "subcategory"], "from": before,
            "to": _category_label(cat.category_name, cat.subcategory_name)})
        session.add(entry)
        await session.flush()
        self._enqueue(session, actor, ticket, UpdateTicket(category_external_id=cat.category_external_id or "",
                                                           subcategory_external_id=cat.subcategory_external_id or ""),
                      entry)

    async def _set_custom_fields(self, session: AsyncSession, actor: Actor, ticket: Ticket, fields: dict[str, str]
                                 ) -> None:
        """The PSA's own fields that change (checked by card_fields.check_values), in one op with one internal
        timeline entry (FIELD_CHANGE: the fields named, each one's value before and after; "" is empty)."""
        current = {str(k): str(v) for k, v in (ticket.custom_fields or {}).items()}
        changed = {k: v for k, v in fields.items() if current.get(k, "") != v}
        if not changed:
            return
        ticket.custom_fields = {k: v for k, v in {**current, **changed}.items() if v}
        self._touch(ticket)
        entry = self._entry(actor, ticket, EntryKind.FIELD_CHANGE, data={
            "fields": sorted(changed), "from": {k: current.get(k, "") for k in changed}, "to": dict(changed)})
        session.add(entry)
        await session.flush()
        self._enqueue(session, actor, ticket, UpdateTicket(custom_fields=changed), entry)

    async def _apply_status(self, session: AsyncSession, actor: Actor, ticket: Ticket, status: str) -> None:
        resolved = await resolve_status(
            session, connection_id=ticket.connection_id, board_external_id=ticket.board_external_id, text=status
        )
        await self._set_status(session, actor, ticket, resolved)

    async def _set_status(self, session: AsyncSession, actor: Actor, ticket: Ticket, resolved: ResolvedStatus) -> None:
        if resolved.psa_status_name == ticket.psa_status_name and resolved.stage.value == ticket.stage:
            return
        before = {"stage": ticket.stage, "status": ticket.psa_status_name}
        ticket.stage = resolved.stage.value
        ticket.psa_status_id = resolved.psa_status_id
        ticket.psa_status_name = resolved.psa_status_name
        ticket.closed_at = None if resolved.stage.is_open else self._clock()
        self._touch(ticket)
        entry = self._entry(
            actor, ticket, EntryKind.STATUS_CHANGE,
            data={"from": before, "to": {"stage": ticket.stage, "status": ticket.psa_status_name}},
        )
        session.add(entry)
        await session.flush()
        self._enqueue(session, actor, ticket, UpdateTicket(status_external_id=resolved.psa_status_id), entry)

    async def _priority_target(self, session: AsyncSession, ticket: Ticket, prio: Priority) -> tuple[str, str] | None:
        """The PSA's priority for `prio` (None when standalone or unchanged), or InvalidInput if it has none."""
        if ticket.priority == prio.value or not ticket.connection_id:
            return None
        psa_prio = await psa_priority_for(session, ticket.connection_id, prio)
        if psa_prio is None:
            raise InvalidInput(
                f"This PSA has no priority mapped to {prio.label}.",
                hint="Map one with `deskbridge connection map-priority`, or run a sync first.",
                field="priority",
            )
        return psa_prio

    async def _set_priority(self, session: AsyncSession, actor: Actor, ticket: Ticket, prio: Priority,
                            psa_prio: tuple[str, str] | None) -> None:
        before = ticket.priority
        ticket.priority, ticket.priority_rank = prio.value, prio.rank
        if psa_prio:
            ticket.psa_priority_id, ticket.psa_priority_name = psa_prio
        self._touch(ticket)
        entry = self._entry(actor, ticket, EntryKind.PRIORITY_CHANGE, data={"from": before, "to": prio.value})
        session.add(entry)
        await session.flush()
        self._enqueue(session, actor, ticket, UpdateTicket(priority_external_id=psa_prio[0] if psa_prio else None),
                      entry)

    async def _assignee_target(self, session: AsyncSession, ticket: Ticket,
                               member_id: int | None) -> tuple[Member | None, str | None]:
        """The member to assign (None unassigns) and their PSA id, or an error saying why they cannot be."""
        member = await session.get(Member, member_id) if member_id is not None else None
        if member_id is not None and (member is None or not member.active):
            raise NotFound("That technician was not found or is inactive.", hint="Pick another technician.",
                           reason=MEMBER_NOT_FOUND)
        ext = None
        if member is not None and ticket.connection_id is not None:
            ext = await self._member_external_id(session, ticket, member.id)
            if ext is None:
                raise InvalidInput(
                    f"{member.name} has no account in this PSA, so the ticket cannot be assigned to them there.",
                    hint="Map the technician's e-mail to a PSA member (run a sync), then try again.",
                    field="assignee",
                )
        return member, ext

    async def _set_assignee(self, session: AsyncSession, actor: Actor, ticket: Ticket, member: Member | None,
                            ext: str | None) -> None:
        before = ticket.assignee_member_id
        ticket.assignee_member_id = member.id if member else None
        self._touch(ticket)
        entry = self._entry(actor, ticket, EntryKind.ASSIGNMENT,
                            data={"from": before, "to": ticket.assignee_member_id,
                                  "to_name": member.name if member else None})
        session.add(entry)
        await session.flush()
        self._enqueue(session, actor, ticket, UpdateTicket(owner_external_id=ext, unassign=member is None), entry)

    async def comment(
        self,
        actor: Actor,
        ref: int | str,
        text: str,
        *,
        visibility: str = "internal",
        email_contact: bool | None = None,
        status: str | None = None,
        source: str | None = None,
        contact_email: str | None = None,
        within: Within | None = None,
    ) -> TicketDetail:
        """Add a note (public, internal or resolution); optionally change status in the same write.
        `contact_email`: a customer's own reply, attributed to their PSA contact where one has that e-mail.
        `within`: run in the note's transaction (the mail intake records there that a mail's words are written).

        Announced (NoteAdded, after the commit) so the ticket's other chat threads show it; `source` names
        the thread it was written in, which is left alone.
        """
        if visibility not in _VISIBILITY_KIND:
            raise InvalidInput(f"'{visibility}' is not a note visibility.", hint="Use public, internal or resolution.",
                               field="visibility")
        if visibility != "public" or status is not None:
            self._require_member(actor, "add internal notes or change status")
        async with self.db.write(actor.scope) as session:
            ticket = await load_ticket(session, actor, ref, for_update=True)
            note = await self._note(session, actor, ticket, text, visibility=visibility, email_contact=email_contact,
                                    status=status, contact_email=contact_email, source=source)
            if within is not None:
                await within(session, ticket)
            detail = await self._detail(session, actor, ticket)
        if self.notifier is not None:
            await self.notifier.notify(note)
        return detail

    def note_within(self, actor: Actor, text: str, *, visibility: str = "internal",
                    then: Within | None = None) -> NoteWithin:
        """A note written inside another write's transaction (a `Within` for `create_within` or `comment`), then
        `then` in the same transaction: the mail intake writes an assignment's "confirm who they are" note in the
        ticket's own transaction, so a death can never leave the ticket without it. Announce it (NoteAdded) with
        `await written.announce()` once that write has committed."""
        if visibility not in _VISIBILITY_KIND:
            raise InvalidInput(f"'{visibility}' is not a note visibility.", hint="Use public, internal or resolution.",
                               field="visibility")
        if visibility != "public":
            self._require_member(actor, "add internal notes")
        return NoteWithin(self, actor, text, visibility, then)

    async def _note(self, session: AsyncSession, actor: Actor, ticket: Ticket, text: str, *, visibility: str,
                    email_contact: bool | None = None, status: str | None = None, contact_email: str | None = None,
                    source: str | None = None) -> NoteAdded:
        """The note (and any status change) in the caller's transaction; returns its NoteAdded, to announce after
        the commit."""
        caps = await self._caps(session, ticket)
        body = _clean_text(text, field="note", limit=min(MAX_NOTE_CHARS, caps.max_note_chars))
        if visibility == "resolution" and not caps.has(Feature.RESOLUTION_NOTES):
            visibility = "internal"
        author = await self._author(session, actor)
        marker = new_marker() if ticket.connection_id else None
        entry = self._entry(actor, ticket, _VISIBILITY_KIND[visibility], body=body, marker=marker, author=author)
        session.add(entry)
        self._touch(ticket)
        await session.flush()
        public = visibility == "public"
        self._enqueue(
            session, actor, ticket,
            AddNote(
                text=body,
                visibility=visibility,
                email_contact=public if email_contact is None else (email_contact and public),
                author_member_external_id=await self._member_external_id(session, ticket, actor.member_id),
                author_contact_external_id=await self._contact_external_id(session, ticket, contact_email),
            ),
            entry, marker=marker,
        )
        if public and actor.is_member and actor.member_id is not None and ticket.first_response_at is None:
            ticket.first_response_at = entry.occurred_at
            ws = await session.get(Workspace, actor.workspace_id)
            if (ws and ws.settings.get("first_reply_moves_to_in_progress") and ticket.stage == Stage.NEW.value
                    and status is None):
                status = "in progress"
        if status is not None:
            await self._apply_status(session, actor, ticket, status)
        return NoteAdded(workspace_id=actor.workspace_id, ticket_id=ticket.id, ticket_number=ticket.number,
                         origin=actor.origin.value, occurred_at=self._clock(), entry_id=entry.id,  # type: ignore[arg-type]
                         visibility=visibility, author_name=author.name if author else actor.display,
                         body=body, source=source)

    async def log_time(
        self,
        actor: Actor,
        ref: int | str,
        minutes: int,
        *,
        notes: str = "",
        started_at: datetime | None = None,
        billable: bool = True,
    ) -> TicketDetail:
        self._require_member(actor, "log time")
        if not isinstance(minutes, int) or minutes <= 0 or minutes > MAX_TIME_MINUTES:
            raise InvalidInput(
                f"{minutes!r} is not a valid duration.",
                hint=f"Log between 1 and {MAX_TIME_MINUTES} minutes per entry (e.g. 30m or 1h30m).",
                field="minutes",
            )
        note = _clean_text(notes, field="time note", limit=MAX_NOTE_CHARS, required=False)
        # What the write needs is read before it takes the write turn (a burst of held clicks queues for SQLite's
        # one writer: only the write itself waits there); the ticket is read again inside and checked again if it
        # moved meanwhile. Its detail is read after the commit.
        async with self.db.read(actor.scope) as session:
            seen = await load_ticket(session, actor, ref)
            caps = await self._caps(session, seen)
            if seen.connection_id and not caps.has(Feature.TIME_ENTRIES):
                raise InvalidInput("This PSA does not accept time entries from Deskbridge.",
                                   hint="Log the time in the PSA itself; a note here can say what you did.")
            await self._time_allowed(session, seen)
            zone = await workspace_zone(session, actor.workspace_id)
            author = await self._author(session, actor)
            member_external_id = await self._member_external_id(session, seen, actor.member_id)
        start = started_at or self._clock() - timedelta(minutes=minutes)
        if start.tzinfo is None:
            raise InvalidInput("The start time needs a time zone.", field="started_at",
                               hint="Give it with an offset, e.g. 2026-12-07T09:00:00Z.")
        # the start is told in the workspace's zone, whatever offset it came with: its date is the day the PSA files
        # the time under (Autotask dateWorked), the technician's day, not UTC's
        start = start.astimezone(zone)
        async with self.db.write(actor.scope) as session:
            ticket = await load_ticket(session, actor, f"id:{seen.id}", for_update=True)
            if ticket.connection_id != seen.connection_id:  # what was read for the PSA (rights, member id) is stale
                raise Conflict("This ticket moved to another PSA connection while the time was being logged.",
                               hint="Log the time again: it is checked against the ticket's PSA as it is now.")
            if _time_basis(ticket) != _time_basis(seen):  # changed since it was read: check it again
                await self._time_allowed(session, ticket)
            marker = new_marker() if ticket.connection_id else None
            entry = self._entry(actor, ticket, EntryKind.TIME_ENTRY, body=note, marker=marker,
                                data={"minutes": minutes, "billable": billable, "started_at": start.isoformat()},
                                author=author)
            session.add(entry)
            self._touch(ticket)
            await session.flush()
            self._enqueue(
                session, actor, ticket,
                AddTimeEntry(minutes=minutes, started_at=start, notes=note, billable=billable,
                             member_external_id=member_external_id),
                entry, marker=marker,
            )
        async with self.db.read(actor.scope) as session:
            return await self._detail(session, actor, await load_ticket(session, actor, f"id:{seen.id}"))

    @staticmethod
    async def _time_allowed(session: AsyncSession, ticket: Ticket) -> None:
        """Refuse up front what the PSA is known to refuse: time on a closed ticket, or in a status whose
        board says no time entries (ConnectWise `timeEntryNotAllowed`), as far as the local copy knows."""
        if not ticket.connection_id:
            return
        status = (await session.exec(select(PicklistItem).where(
            PicklistItem.connection_id == ticket.connection_id, PicklistItem.kind == "status",
            PicklistItem.external_id == (ticket.psa_status_id or ""),
            PicklistItem.parent_external_id.in_((ticket.board_external_id or "", ""))))).first()  # type: ignore[attr-defined]
        data = status.data if status is not None else {}
        name = ticket.psa_status_name or Stage(ticket.stage).label
        number = f"#{ticket.number}" if ticket.number is not None else "This ticket"
        if Stage(ticket.stage) == Stage.CLOSED or data.get("closed"):
            raise Conflict(f"Ticket {number} is closed in the PSA ('{name}'), and the PSA takes no time on closed "
                           "tickets.", hint="Reopen it first (change its status), or log the time in the PSA.")
        if data.get("time_entry_allowed") is False:
            raise Conflict(f"The PSA takes no time on tickets in status '{name}'.",
                           hint="Change the status first, or log the time in the PSA.")

    async def attachment_limit(self, actor: Actor, ref: int | str) -> int | None:
        """The largest file `attach` takes for this ticket (its PSA's cap), or None if its PSA takes none."""
        async with self.db.read(actor.scope) as session:
            ticket = await load_ticket(session, actor, ref)
            caps = await self._caps(session, ticket)
        if ticket.connection_id and not caps.has(Feature.ATTACHMENTS):
            return None
        return caps.max_attachment_bytes

    async def contact_reply(self, actor: Actor, ref: int | str, text: str, *, contact_email: str | None = None,
                            source: str | None = None, within: Within | None = None) -> TicketDetail:
        """A customer's reply from their own chat channel: a public note, not e-mailed back to them (they wrote
        it); a ticket waiting on the customer goes back to in progress, as the PSA does when they answer.
        `within`: run in the reply's transaction (see `comment`)."""
        system = Actor.system(actor.workspace_id)

        async def back_in_progress(session: AsyncSession, ticket: Ticket) -> None:
            if ticket.stage == Stage.WAITING.value:  # read under the note's lock: one move whatever races it
                try:
                    resolved = await resolve_status(session, connection_id=ticket.connection_id,
                                                    board_external_id=ticket.board_external_id,
                                                    text=Stage.IN_PROGRESS.value)
                except DeskbridgeError as exc:  # no such status in the PSA: the reply is kept, the status stays
                    log.warning("a customer's reply left its ticket waiting: %s", exc.message)
                else:
                    await self._set_status(session, system, ticket, resolved)
            if within is not None:
                await within(session, ticket)

        # the reply, the status move and the caller's `within`: one transaction (both or neither on a death)
        return await self.comment(actor, ref, text, visibility="public", email_contact=False, source=source,
                                  contact_email=contact_email, within=back_in_progress)

    async def _contact_external_id(self, session: AsyncSession, ticket: Ticket, email: str | None) -> str | None:
        if not email or ticket.connection_id is None:
            return None
        contact = (await session.exec(select(Contact).where(
            Contact.connection_id == ticket.connection_id, Contact.customer_id == ticket.customer_id,
            sa.func.lower(Contact.email) == email.strip().lower()))).first()
        return contact.external_id if contact is not None else None

    async def attach(
        self, actor: Actor, ref: int | str, *, filename: str, content: bytes, content_type: str = "application/octet-stream",
        visibility: str = "internal",
    ) -> TicketDetail:
        """Attach a file: size checked against the PSA's cap before anything is stored or sent. `visibility`
        (public: the customer may see it in the PSA) always reaches the PSA; internal unless said."""
        if visibility not in ("public", "internal"):
            raise InvalidInput(f"'{visibility}' is not a file visibility.", hint="Use public or internal.",
                               field="visibility")
        name = _file_name(filename)
        async with self.db.write(actor.scope) as session:
            ticket = await load_ticket(session, actor, ref, for_update=True)
            caps = await self._caps(session, ticket)
            if ticket.connection_id and not caps.has(Feature.ATTACHMENTS):
                raise InvalidInput("This PSA does not accept attachments from Deskbridge.",
                                   hint="Attach the file in the PSA itself, or share a link to it in a note.")
            if len(content) == 0:
                raise InvalidInput("The file is empty.", hint="Attach a file with content.", field="file")
            if len(content) > caps.max_attachment_bytes:
                raise InvalidInput(
                    f"{name} is {len(content) / 1_048_576:.1f} MB; the limit here is "
                    f"{caps.max_attachment_bytes / 1_048_576:.0f} MB.",
                    hint="Share a link to the file instead, or compress it.",
                    field="file",
                )
            digest = hashlib.sha256(content).hexdigest()
            blob = AttachmentBlob(workspace_id=actor.workspace_id, sha256=digest, size=len(content),
                                  content_type=content_type[:200], data=content)
            session.add(blob)
            await session.flush()
            marker = new_marker() if ticket.connection_id else None
            entry = self._entry(actor, ticket, EntryKind.ATTACHMENT, body=name, marker=marker,
                                data={"filename": name, "size": len(content), "content_type": content_type,
                                      "sha256": digest, "blob_id": blob.id, "visibility": visibility},
                                author=await self._author(session, actor))
            session.add(entry)
            self._touch(ticket)
            await session.flush()
            self._enqueue(session, actor, ticket,
                          UploadAttachment(blob_id=blob.id, filename=name, content_type=content_type,
                                           size=len(content), visibility=visibility),
                          entry, marker=marker)
            return await self._detail(session, actor, ticket)

    async def reopen_guard(self, actor: Actor, ref: int | str) -> None:
        """Raise Conflict if the ticket is closed (surfaces call this before offering edit actions)."""
        detail = await self.get(actor, ref)
        if not detail.summary.stage.is_open:
            raise Conflict(f"Ticket {detail.summary.display_number} is {detail.summary.stage.label.lower()}.",
                           hint="Change its status to reopen it first.")


async def _contact_by_email(session: AsyncSession, customer: Customer | None, email: str) -> int:
    """The id of the customer's contact with this e-mail (create forms ask for it where the PSA's board
    makes the contact mandatory); a field error when there is none."""
    if customer is None:
        raise InvalidInput("Pick the customer first: the contact is one of its people.", field="customer",
                           hint="Choose the customer, then the contact's e-mail.")
    wanted = email.strip().lower()
    rows = (await session.exec(select(Contact).where(Contact.customer_id == customer.id))).all()
    match = next((c for c in rows if (c.email or "").strip().lower() == wanted), None)
    if match is None:
        raise InvalidInput(f"{customer.name} has no contact with the e-mail {email.strip()}.",
                           hint="Check the address, or sync the PSA's contacts first.", field="contact")
    return match.id  # type: ignore[return-value]


def _scoped_customer(actor: Actor, customer_id: int | None) -> int | None:
    """In a channel bound to one customer every ticket is that customer's; naming another is refused."""
    if actor.customer_scope_id is None:
        return customer_id
    if customer_id not in (None, actor.customer_scope_id):
        raise PermissionDenied("This channel is bound to one customer; tickets go to that customer.",
                               hint="Leave the customer out here, or create the ticket in a technicians' channel.")
    return actor.customer_scope_id


def _clean_extras(extra_fields: Mapping[str, str] | None) -> dict[str, str]:
    """Values for board-required fields a ticket has no place for, trimmed; too long for any PSA is refused."""
    extras = {str(k).strip(): str(v).strip() for k, v in (extra_fields or {}).items()
              if str(k).strip() and str(v).strip()}
    for name, value in extras.items():
        if len(name) > 100 or len(value) > 1000:
            raise InvalidInput(f"'{name[:40]}' is too long for the PSA.", hint="Shorten it and try again.",
                               field=f"custom:{name[:40]}")
    return extras


def _require_priority(conn: PsaConnection, caps: Capabilities, psa_prio: Any, prio: Priority) -> None:
    """A PSA that needs a priority on every ticket gets one that maps to the chosen one, or the create is refused."""
    if psa_prio is None and "priority_external_id" in caps.create_requires:
        raise InvalidInput(f"{conn.name} has no priority that maps to {prio.label}.",
                           hint="Pick another priority, or map one with `deskbridge connection mappings`.",
                           field="priority")


async def _parties(session: AsyncSession, conn: PsaConnection | None, caps: Capabilities, *,
                   customer_id: int | None, contact_id: int | None, contact_email: str | None,
                   assignee_member_id: int | None) -> tuple[Customer | None, Contact | None, Member | None]:
    """The new ticket's customer, contact and assignee, each checked (exists, active, belongs together)."""
    customer = await session.get(Customer, customer_id) if customer_id is not None else None
    if customer_id is not None and customer is None:
        raise NotFound(f"Customer {customer_id} was not found.", reason=CUSTOMER_NOT_FOUND,
                       hint="Pick the customer from the form's list (its PSA identifier, e.g. ACME).")
    if customer is not None and not customer.active:
        raise InvalidInput(f"Customer {customer.name} is inactive, so it cannot get new tickets.",
                           hint="Pick an active customer, or reactivate this one in the PSA.", field="customer")
    if conn and "company_external_id" in caps.create_requires and (customer is None or not customer.external_id):
        raise InvalidInput(
            f"{conn.name} needs a customer on every new ticket.", hint="Pick the customer and try again.",
            field="customer",
        )
    if contact_id is None and (contact_email or "").strip():
        contact_id = await _contact_by_email(session, customer, contact_email or "")
    contact = await session.get(Contact, contact_id) if contact_id is not None else None
    if contact_id is not None and (contact is None or (customer and contact.customer_id not in (None, customer.id))):
        raise NotFound("That contact was not found for this customer.", hint="Pick one of the customer's contacts.")
    assignee = await session.get(Member, assignee_member_id) if assignee_member_id else None
    if assignee_member_id and (assignee is None or not assignee.active):
        raise NotFound("That technician was not found or is inactive.", hint="Pick another technician.",
                       reason=MEMBER_NOT_FOUND)
    return customer, contact, assignee


def _category_label(category: str | None, subcategory: str | None) -> str | None:
    """A category pair as the card (and the AI's CATEGORY_CHANGE entries) name it: "Hardware › Printer"."""
    if not category:
        return None
    return category + (f" › {subcategory}" if subcategory else "")


def _time_basis(ticket: Ticket) -> tuple[object, ...]:
    """What `_time_allowed` looks at."""
    return ticket.connection_id, ticket.psa_status_id, ticket.board_external_id, ticket.stage, ticket.psa_status_name


class NoteWithin:
    """A note to write inside another write's transaction (`TicketService.note_within`): call it as a `Within`;
    `announce` after that transaction has committed tells the chat surfaces (NoteAdded), as `comment` does."""

    def __init__(self, service: TicketService, actor: Actor, text: str, visibility: str, then: Within | None) -> None:
        self._service, self._actor, self._text, self._visibility, self._then = service, actor, text, visibility, then
        self._note: NoteAdded | None = None

    async def __call__(self, session: AsyncSession, ticket: Ticket) -> None:
        self._note = await self._service._note(session, self._actor, ticket, self._text,  # noqa: SLF001 - its own
                                               visibility=self._visibility)
        if self._then is not None:
            await self._then(session, ticket)

    async def announce(self) -> None:
        note, self._note = self._note, None
        if note is not None and self._service.notifier is not None:
            await self._service.notifier.notify(note)
