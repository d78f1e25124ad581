"""Loading tickets within an actor's scope and turning rows into view models (shared by services)."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core import ticket_refs
from core.context import Actor
from core.errors import InvalidInput, NotFound
from core.hints import TICKET_HINT, TICKET_NOT_FOUND
from core.views import TicketDetail, TicketHeader, TicketSummary, TimelineItem
from store.db import Database
from store.enums import EntryKind, OutboxStatus, Priority, Stage
from store.tables import Contact, Customer, Member, OutboxOp, Ticket, TimelineEntry

_REF = re.compile(r"^\s*#?\s*([0-9]{1,18})\s*$")
_ID_REF = re.compile(r"^\s*id:\s*([0-9]{1,18})\s*$", re.IGNORECASE)
_PSA_REF = re.compile(r"^\s*([a-z][a-z0-9]{0,9})-([0-9a-z][0-9a-z_.]{0,63})\s*$", re.IGNORECASE)
MAX_ID = 2**31 - 1  # ids and numbers are 32-bit integer columns; larger ones cannot exist
GONE_HINT = "It may have been deleted in the PSA; list the queue (/tickets) to find it."
REF_FORMS = "the ticket number (1042 or #1042), its PSA name (cw-1042) or its stable id (id:17)"


@dataclass(frozen=True, slots=True)
class TicketRef:
    """How a ticket is named, on every surface (chat, REST, console):

        1042, #1042   its number: the PSA's ticket number, or the local number of a standalone ticket; a
                      ticket whose PSA create is still queued has none yet
        id:17         its stable id, which it has from the moment it exists and keeps for good

        cw-1002       its PSA name: the connection's prefix and the PSA's id, unambiguous where a workspace
                      has several PSAs whose numbers collide (core/ticket_refs.py)

    Exactly one of `number`, `id` and (`prefix`, `external_id`) is set.
    """

    number: int | None = None
    id: int | None = None
    prefix: str | None = None
    external_id: str | None = None

    def __str__(self) -> str:
        if self.prefix is not None:
            return f"{self.prefix}-{self.external_id}"
        return f"#{self.number}" if self.number is not None else f"id:{self.id}"


def parse_ticket_ref(ref: int | str) -> TicketRef:
    """The one parser of ticket names (see TicketRef); InvalidInput (field `ticket`) for anything else."""
    if isinstance(ref, str) and (named := _PSA_REF.match(ref)) and named.group(1).lower() != "id":
        return TicketRef(prefix=named.group(1).lower(), external_id=named.group(2))
    if isinstance(ref, int) and not isinstance(ref, bool):
        m, kind = _REF.match(str(ref)), "number"
    elif isinstance(ref, str):
        m, kind = (_ID_REF.match(ref), "id") if _ID_REF.match(ref) else (_REF.match(ref), "number")
    else:
        m, kind = None, "number"
    value = int(m.group(1)) if m else -1  # ASCII digits only: '²' is a digit to str.isdigit() but not to int()
    if value <= 0:  # a value above MAX_ID is well formed but names no ticket (load_ticket: NotFound)
        raise InvalidInput(f"'{ref}' is not a ticket number or id.", hint=f"Name a ticket by {REF_FORMS}.",
                           field="ticket")
    return TicketRef(number=value) if kind == "number" else TicketRef(id=value)


def parse_ref(ref: int | str) -> int:
    """A ticket number from what a person typed: 123, '#123', ' 123 ' (InvalidInput for an `id:` ref)."""
    parsed = parse_ticket_ref(ref)
    if parsed.number is None or parsed.number > MAX_ID:
        raise InvalidInput(f"'{ref}' is not a ticket number.", hint="Use the number, e.g. 1042.", field="ticket")
    return parsed.number


def not_found(number: int) -> NotFound:
    return NotFound(f"Ticket #{number} was not found.", hint=TICKET_HINT, reason=TICKET_NOT_FOUND)


def _id_not_found(ref: TicketRef) -> NotFound:
    return NotFound(f"Ticket {ref} was not found.", hint=GONE_HINT, reason=TICKET_NOT_FOUND)


def ticket_id_not_found(ticket_id: int) -> NotFound:
    """A ticket named by its stable id (a button, a card, an API path) that is gone or outside the actor's scope."""
    return _id_not_found(TicketRef(id=ticket_id))


async def load_ticket(session: AsyncSession, actor: Actor, ref: int | str, *, for_update: bool = False) -> Ticket:
    """The ticket named by `ref` (see TicketRef) inside the actor's workspace and customer scope, or NotFound.

    `id:N` works from the moment a ticket exists: buttons and API clients of a ticket whose PSA create is still
    queued (it has no number yet) can already reply, change or log time; the outbox delivers in order.
    """
    parsed = parse_ticket_ref(ref)
    number = parsed.number
    if (parsed.number or parsed.id or 0) > MAX_ID:  # no such row can exist (and the database would refuse it)
        raise not_found(number) if number is not None else _id_not_found(parsed)
    if parsed.prefix is not None:
        conn = await ticket_refs.connection_for(session, actor.workspace_id, parsed.prefix)
        if conn is None:
            names = ", ".join(sorted((await ticket_refs.prefixes(session, actor.workspace_id)).values()))
            raise NotFound(f"No PSA connection is named '{parsed.prefix}' here, so {parsed} names no ticket.",
                           hint=f"Connections here: {names}." if names else "Name the ticket by its number.")
        key = sa.and_(col(Ticket.connection_id) == conn, col(Ticket.external_id) == parsed.external_id)
    elif parsed.id is not None:
        key = col(Ticket.id) == parsed.id
    else:
        key = col(Ticket.number) == parsed.number
    stmt = select(Ticket).where(key, col(Ticket.deleted_at).is_(None))
    if actor.customer_scope_id is not None:
        stmt = stmt.where(Ticket.customer_id == actor.customer_scope_id)
    if for_update and session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    ticket = (await session.exec(stmt)).first()
    if ticket is None:
        raise not_found(number) if number is not None else _id_not_found(parsed)
    return ticket


_HEADER_COLUMNS = tuple(col(c) for c in (
    Ticket.id, Ticket.number, Ticket.subject, Ticket.customer_id, Ticket.priority, Ticket.stage,
    Ticket.psa_status_name, Ticket.assignee_member_id, Ticket.created_at, Ticket.updated_at, Ticket.connection_id,
    Ticket.external_id, Ticket.board_external_id))


@functools.lru_cache(maxsize=8)
def _header_statement(by_id: bool, customer_scoped: bool) -> Any:
    """A ticket's header row with its customer's and assignee's names: one statement (values are bind parameters,
    so the statement and its scoped form are built once)."""
    stmt = (sa.select(*_HEADER_COLUMNS, col(Customer.name).label("customer_name"), col(Member.name).label("member_name"))
            .outerjoin(Customer, col(Customer.id) == col(Ticket.customer_id))
            .outerjoin(Member, col(Member.id) == col(Ticket.assignee_member_id))
            .where((col(Ticket.id) if by_id else col(Ticket.number)) == sa.bindparam("key"),
                   col(Ticket.deleted_at).is_(None)))
    if customer_scoped:
        stmt = stmt.where(col(Ticket.customer_id) == sa.bindparam("customer"))
    return stmt


async def load_header(db: Database, actor: Actor, ref: int | str) -> TicketHeader | None:
    """The header a form needs (summary and board) in one one-hop read (Database.rows), or NotFound exactly as
    `load_ticket` says it; None for a PSA name (`cw-1002`), which the caller reads through `load_ticket`."""
    parsed = parse_ticket_ref(ref)
    if parsed.prefix is not None:
        return None
    number = parsed.number
    if (parsed.number or parsed.id or 0) > MAX_ID:
        raise not_found(number) if number is not None else _id_not_found(parsed)
    params: dict[str, Any] = {"key": parsed.id if parsed.id is not None else parsed.number}
    if actor.customer_scope_id is not None:
        params["customer"] = actor.customer_scope_id
    rows = await db.rows(actor.scope, _header_statement(parsed.id is not None, actor.customer_scope_id is not None),
                         params)
    if not rows:
        raise not_found(number) if number is not None else _id_not_found(parsed)
    row = rows[0]
    summary = summary_from(row, row.customer_name, row.member_name,  # type: ignore[arg-type]
                           await ticket_refs.prefixes_of(db, actor.workspace_id))
    return TicketHeader(summary=summary, board_external_id=row.board_external_id)


async def load_ticket_by_id(session: AsyncSession, actor: Actor, ticket_id: int) -> Ticket:
    stmt = select(Ticket).where(Ticket.id == ticket_id, Ticket.deleted_at.is_(None))  # type: ignore[union-attr]
    if actor.customer_scope_id is not None:
        stmt = stmt.where(Ticket.customer_id == actor.customer_scope_id)
    ticket = (await session.exec(stmt)).first()
    if ticket is None:
        raise ticket_id_not_found(ticket_id)
    return ticket


# value -> member: an Enum call costs ~1-3 µs, a queue page makes two per row (issue 20 item 4); an unknown value
# still goes through the Enum call (and its ValueError)
_STAGES: dict[str, Stage] = {s.value: s for s in Stage}
_PRIORITIES: dict[str, Priority] = {p.value: p for p in Priority}


def summary_from(ticket: Ticket, customer_name: str | None, assignee_name: str | None,
                 prefixes: dict[int, str] | None = None, sla_remaining_s: float | None = None) -> TicketSummary:
    stage = _STAGES.get(ticket.stage) or Stage(ticket.stage)
    return TicketSummary(
        id=ticket.id,  # type: ignore[arg-type]
        number=ticket.number,
        subject=ticket.subject,
        customer_id=ticket.customer_id,
        customer_name=customer_name,
        priority=_PRIORITIES.get(ticket.priority) or Priority(ticket.priority),
        stage=stage,
        status_name=ticket.psa_status_name or stage.label,
        assignee_id=ticket.assignee_member_id,
        assignee_name=assignee_name,
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        connection_id=ticket.connection_id,
        psa_name=ticket_refs.psa_name(prefixes or {}, number=ticket.number, connection_id=ticket.connection_id,
                                      external_id=getattr(ticket, "external_id", None)),
        sla_remaining_s=sla_remaining_s,
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
            await ticket_refs.prefixes(session, ticket.workspace_id),
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
        history_unread=ticket.external_id is not None and ticket.history_at is None,
        category_name=ticket.category_name if internal else None,
        subcategory_name=ticket.subcategory_name if internal else None,
        custom_fields={str(k): str(v) for k, v in (ticket.custom_fields or {}).items()} if internal else {},
    )
