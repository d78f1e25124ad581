"""Many ticket writes of one actor in one transaction: the light path for alert storms (issue 21).

`TicketService.comment` is one transaction per note and answers with the ticket's whole detail (its
timeline rebuilt), which is right for a person writing a note and far too much for an RMM sending a
thousand events. `ticket_batch(tickets, actor)` opens one write transaction and yields a `TicketBatch`:

    async with ticket_batch(tickets, actor) as batch:
        ticket = await batch.create(subject=..., customer_id=...)   # TicketService.create_in, in a savepoint
        await batch.note(ticket, "Alert triggered again")           # timeline entry + outbox op, nothing read
        await batch.status(ticket, "resolved")                      # in a savepoint
        ... the caller's own rows in batch.session, committed together ...

Each write is the same row + timeline entry + outbox op as the single-write call, so the outbox syncs it
to the PSA with the usual guarantees; nothing is committed until the block ends, and the domain events
(NoteAdded, TicketCreated for standalone tickets) are told to the notifier after the commit, in order.
A create or status change that is refused (DeskbridgeError) rolls back only its savepoint, so the caller
can keep the rest of the batch and record why. It uses TicketService's own write helpers, so the rules
stay in one place (core/tickets.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.base import Capabilities
from core.context import Actor
from core.notify import DomainEvent, NoteAdded, TicketCreated
from core.outbox.ops import AddNote, new_marker
from core.tickets import MAX_NOTE_CHARS, TicketService, _clean_text
from store.enums import EntryKind
from store.tables import Member, Ticket, TimelineEntry


@asynccontextmanager
async def ticket_batch(service: TicketService, actor: Actor) -> AsyncIterator[TicketBatch]:
    """One write transaction for many ticket writes; events go to the notifier after the commit."""
    async with service.db.write(actor.scope) as session:
        batch = TicketBatch(service, session, actor)
        yield batch
        await batch.flush()
    if service.notifier is not None:
        for event in batch.events:
            await service.notifier.notify(event)


class TicketBatch:
    """Ticket writes in one transaction (see module doc); made by `ticket_batch`."""

    def __init__(self, service: TicketService, session: AsyncSession, actor: Actor) -> None:
        self.service, self.session, self.actor = service, session, actor
        self.events: list[DomainEvent] = []
        self._caps: dict[int | None, Capabilities] = {}
        self._author: Member | None = None
        self._author_loaded = False
        self._notes: list[tuple[Ticket, TimelineEntry, str | None]] = []  # added, their outbox ops not yet

    async def create(self, **fields: Any) -> Ticket:
        """Create a ticket (every check of `TicketService.create`); a refusal rolls back only this create."""
        await self.flush()
        async with self.session.begin_nested():
            ticket = await self.service.create_in(self.session, self.actor, **fields)
        if ticket.connection_id is None:
            self.events.append(TicketCreated(
                workspace_id=self.actor.workspace_id, ticket_id=ticket.id, ticket_number=ticket.number,
                origin=self.actor.origin.value, occurred_at=self.service._clock(), subject=ticket.subject,
                customer_id=ticket.customer_id))
        return ticket

    async def note(self, ticket: Ticket, text: str) -> None:
        """Add an internal note: its timeline entry now, its outbox op (PSA-backed) at the next `flush`, so
        a run of notes is one INSERT per table. Nothing is read back (no timeline rebuild)."""
        self.service._require_member(self.actor, "add internal notes")
        caps = await self._capabilities(ticket)
        body = _clean_text(text, field="note", limit=min(MAX_NOTE_CHARS, caps.max_note_chars))  # before any write
        author = await self._member()
        marker = new_marker() if ticket.connection_id else None
        entry = self.service._entry(self.actor, ticket, EntryKind.NOTE_INTERNAL, body=body, marker=marker,
                                    author=author)
        self.session.add(entry)
        self.service._touch(ticket)
        self._notes.append((ticket, entry, marker))

    async def flush(self) -> None:
        """Write the pending notes' outbox ops (in the order the notes were added, before any later write of
        this batch, so the PSA gets them in order) and queue their NoteAdded events."""
        if not self._notes:
            return
        notes, self._notes = self._notes, []
        await self.session.flush()  # the entries' ids
        author = await self._member()
        for ticket, entry, marker in notes:
            member_ext = await self.service._member_external_id(self.session, ticket, self.actor.member_id)
            self.service._enqueue(self.session, self.actor, ticket, AddNote(
                text=entry.body, visibility="internal", email_contact=False,
                author_member_external_id=member_ext), entry, marker=marker)
            self.events.append(NoteAdded(
                workspace_id=self.actor.workspace_id, ticket_id=ticket.id, ticket_number=ticket.number,
                origin=self.actor.origin.value, occurred_at=entry.occurred_at, entry_id=entry.id,  # type: ignore[arg-type]
                visibility="internal", author_name=author.name if author else self.actor.display, body=entry.body))

    async def status(self, ticket: Ticket, status: str) -> None:
        """Move the ticket to a status (a PSA status name or a stage); a refusal rolls back only this change."""
        self.service._require_member(self.actor, "change a ticket's status")
        await self.flush()
        async with self.session.begin_nested():
            await self.service._apply_status(self.session, self.actor, ticket, status)

    async def _capabilities(self, ticket: Ticket) -> Capabilities:
        if ticket.connection_id not in self._caps:
            self._caps[ticket.connection_id] = await self.service._caps(self.session, ticket)
        return self._caps[ticket.connection_id]

    async def _member(self) -> Member | None:
        if not self._author_loaded:
            self._author = await self.service._author(self.session, self.actor)
            self._author_loaded = True
        return self._author
