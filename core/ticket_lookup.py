"""Loading tickets within an actor's scope and turning rows into view models (shared by services)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.context import Actor
from core.errors import InvalidInput, NotFound
from core.views import TicketDetail, TicketSummary, TimelineItem
from store.enums import EntryKind, OutboxStatus, Priority, Stage
from store.tables import Contact, Customer, Member, OutboxOp, Ticket, TimelineEntry

_REF = re.compile(r"^\s*#?\s*(\d{1,18})\s*$")
_ID_REF = re.compile(r"^\s*id:(\d{1,18})\s*$")
MAX_ID = 2**31 - 1  # ids and numbers are 32-bit integer columns; larger ones cannot exist


def parse_ref(ref: int | str) -> int:
    """A ticket number from what a person typed: 123, '#123', ' 123 '."""
    m = None if isinstance(ref, bool) else _REF.match(str(ref))
    number = int(m.group(1)) if m else -1
    if not 0 < number <= MAX_ID:
        raise InvalidInput(f"'{ref}' is not a ticket number.", hint="Use the number, e.g. /ticket 1042.",
                           field="ticket")
    return number


def not_found(number: int) -> NotFound:
    return NotFound(
        f"Ticket #{number} was not found.",
        hint="Check the number. In a customer channel only that customer's tickets can be opened.",
    )


async def load_ticket(session: AsyncSession, actor: Actor, ref: int | str, *, for_update: bool = False) -> Ticket:
    """The ticket numbered `ref` inside the actor's workspace and customer scope, or NotFound.

    `id:N` names a ticket by its local id: buttons on a ticket whose PSA create is still queued (it has no
    number yet) carry that, so a technician can already reply or log time; the outbox delivers in order.
    """
    by_id = _ID_REF.match(ref) if isinstance(ref, str) else None
    if by_id:
        ticket_id = int(by_id.group(1))
        if not 0 < ticket_id <= MAX_ID:
            raise InvalidInput(f"'{ref}' is not a ticket reference.", hint="Open the ticket again.", field="ticket")
        stmt = select(Ticket).where(Ticket.id == ticket_id, Ticket.deleted_at.is_(None))  # type: ignore[union-attr]
        number = None
    else:
        number = parse_ref(ref)
        stmt = select(Ticket).where(Ticket.number == number, Ticket.deleted_at.is_(None))  # type: ignore[union-attr]
    if actor.customer_scope_id is not None:
        stmt = stmt.where(Ticket.customer_id == actor.customer_scope_id)
    if for_update and session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    ticket = (await session.exec(stmt)).first()
    if ticket is None:
        raise not_found(number) if number is not None else NotFound(
            "That ticket was not found.", hint="It may have been deleted in the PSA. Run /tickets to see the queue.")
    return ticket


async def load_ticket_by_id(session: AsyncSession, actor: Actor, ticket_id: int) -> Ticket:
    stmt = select(Ticket).where(Ticket.id == ticket_id, Ticket.deleted_at.is_(None))  # type: ignore[union-attr]
    if actor.customer_scope_id is not None:
        stmt = stmt.where(Ticket.customer_id == actor.customer_scope_id)
    ticket = (await session.exec(stmt)).first()
    if ticket is None:
        raise NotFound(f"Ticket {ticket_id} was not found.")
    return ticket


def summary_from(ticket: Ticket, customer_name: str | None, assignee_name: str | None) -> TicketSummary:
    stage = Stage(ticket.stage)
    return TicketSummary(
        id=ticket.id,  # type: ignore[arg-type]
        number=ticket.number,
        subject=ticket.subject,
        customer_id=ticket.customer_id,
        customer_name=customer_name,
        priority=Priority(ticket.priority),
        stage=stage,
        status_name=ticket.psa_status_name or stage.label,
        assignee_id=ticket.assignee_member_id,
        assignee_name=assignee_name,
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        connection_id=ticket.connection_id,
    )


async def names_for(
    session: AsyncSession, tickets: Sequence[Ticket]
) -> tuple[dict[int, str], dict[int, str]]:
    """Customer and member display names for a batch of tickets (two queries, not 2N)."""
    cust_ids = {t.customer_id for t in tickets if t.customer_id is not None}
    mem_ids = {t.assignee_member_id for t in tickets if t.assignee_member_id is not None}
    customers: dict[int, str] = {}
    members: dict[int, str] = {}
    if cust_ids:
        rows = await session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(cust_ids)))  # type: ignore[union-attr]
        customers = {r[0]: r[1] for r in rows}
    if mem_ids:
        rows = await session.execute(select(Member.id, Member.name).where(Member.id.in_(mem_ids)))  # type: ignore[union-attr]
        members = {r[0]: r[1] for r in rows}
    return customers, members


_WRITE_STATE = {OutboxStatus.PENDING.value: "pending", OutboxStatus.INFLIGHT.value: "pending",
                OutboxStatus.BLOCKED.value: "pending", OutboxStatus.DEAD.value: "failed",
                OutboxStatus.DISCARDED.value: "failed"}


def item_from(entry: TimelineEntry, write: str | None = None) -> TimelineItem:
    return TimelineItem(
        write=write,
        id=entry.id,  # type: ignore[arg-type]
        kind=EntryKind(entry.kind),
        origin=entry.origin,
        author_name=entry.author_name,
        body=entry.body,
        data=dict(entry.data or {}),
        occurred_at=entry.occurred_at,
        external_id=entry.external_id,
    )


async def build_detail(session: AsyncSession, ticket: Ticket, *, internal: bool) -> TicketDetail:
    """The full ticket view; `internal=False` drops internal notes and time entries (customer views)."""
    customers, members = await names_for(session, [ticket])
    entries = (
        await session.exec(
            select(TimelineEntry)
            .where(TimelineEntry.ticket_id == ticket.id)
            .order_by(TimelineEntry.occurred_at, TimelineEntry.id)  # type: ignore[arg-type]
        )
    ).all()
    writes = {entry_id: _WRITE_STATE.get(status) for entry_id, status in (await session.execute(
        select(OutboxOp.timeline_entry_id, OutboxOp.status).where(
            OutboxOp.ticket_id == ticket.id, OutboxOp.timeline_entry_id.is_not(None)))).all()}  # type: ignore[union-attr]
    items = tuple(i for i in (item_from(e, writes.get(e.id)) for e in entries) if internal or not i.is_internal)
    contact = await session.get(Contact, ticket.contact_id) if ticket.contact_id else None
    counts = dict(
        (
            await session.execute(
                select(OutboxOp.status, sa.func.count())
                .where(OutboxOp.ticket_id == ticket.id)
                .group_by(OutboxOp.status)
            )
        ).all()
    )
    pending = sum(counts.get(s, 0) for s in (OutboxStatus.PENDING, OutboxStatus.INFLIGHT, OutboxStatus.BLOCKED))
    return TicketDetail(
        summary=summary_from(
            ticket,
            customers.get(ticket.customer_id) if ticket.customer_id else None,
            members.get(ticket.assignee_member_id) if ticket.assignee_member_id else None,
        ),
        description=ticket.description,
        contact_name=contact.name if contact else None,
        board_name=ticket.board_name,
        type_name=ticket.type_name,
        alert_ref=ticket.alert_ref,
        device_ref=ticket.device_ref,
        contract_ref=ticket.contract_ref,
        external_id=ticket.external_id,
        timeline=items,
        pending_writes=pending,
        dead_writes=counts.get(OutboxStatus.DEAD, 0),
        psa_respond_by=ticket.psa_respond_by,
        psa_resolve_by=ticket.psa_resolve_by,
        first_response_at=ticket.first_response_at,
        closed_at=ticket.closed_at,
    )
