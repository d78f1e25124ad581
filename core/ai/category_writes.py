"""Category writes: the AI applying a category, a technician undoing it, a technician accepting a suggestion.

Each is one transaction holding the ticket row, an internal timeline entry (EntryKind.CATEGORY_CHANGE, never
on a customer's view) and, for a PSA-backed ticket, an outbox op (UpdateTicket with the PSA's type id), so
the change reaches the PSA through the one write path: delivered once whatever the retries, every attempt
audited, a dead letter if the PSA keeps refusing. Nothing is accepted that the PSA cannot take: the label
must be an active type of the ticket's board in the PSA's own picklist, and the connector must be able to
change a type (Feature.SET_TYPE); otherwise the AI only suggests and a technician is told why. Where the PSA
nests categories the label is a pair, checked likewise: Autotask's issue type › sub-issue type
(Feature.TICKET_CATEGORIES), or ConnectWise's type › subtype, which the board's type/subtype/item
associations must allow (Feature.TYPE_SUBTYPES); the ConnectWise item is left as it is and must still fit.

Whose category is it: a type the AI wrote (its `AiCategoryApply` row still names the ticket's type) is the
AI's; any other type came from a person (in Deskbridge or in the PSA) and the AI never changes it. Once a
technician undid the AI on a ticket, the AI never applies a category to that ticket again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from connectors.base import Capabilities, Feature
from core import categories
from core.ai.categorize import SEP, split
from core.context import Actor
from core.errors import Conflict, InvalidInput, PermissionDenied
from core.outbox.ops import UpdateTicket, enqueue
from core.ticket_lookup import load_ticket
from store.db import Database, Scope
from store.enums import EntryKind, Origin, Stage
from store.tables import AiCategoryApply, PicklistItem, PsaConnection, Ticket, TimelineEntry
from store.types import utcnow

log = logging.getLogger(__name__)

AI_AUTHOR = "Deskbridge AI"


TYPE, PAIR, TYPED = "type", "pair", "typed"  # what the model's labels are, by PSA (`levels`)


def levels(caps: Capabilities | None) -> str:
    """What a category is on this PSA: its ticket type alone (TYPE), a category pair beside the type
    (PAIR: Autotask issue type › sub-issue type), or the type with the subtype the board allows under it
    (TYPED: ConnectWise type › subtype; the item is a technician's and never predicted)."""
    if caps is not None and caps.has(Feature.TICKET_CATEGORIES):
        return PAIR
    if caps is not None and caps.has(Feature.TYPE_SUBTYPES):
        return TYPED
    return TYPE


def label_of(ticket: Ticket, how: str) -> str | None:
    """The ticket's category as the model names it: its type, or where the PSA nests categories, the pair
    ("Hardware › Printer", or "Hardware" without a subcategory)."""
    return label_from(ticket.type_name, ticket.category_name, ticket.subcategory_name, how)


def label_from(type_name: str | None, category: str | None, subcategory: str | None, how: str) -> str | None:
    if how == TYPED:  # category_* hold the ConnectWise subtype
        return (type_name + (SEP + category if category else "")) if type_name else None
    if how != PAIR:
        return type_name or None
    if not category:
        return None
    return category + (SEP + subcategory if subcategory else "")


def ai_owned(ticket_type: str | None, row: AiCategoryApply | None) -> bool:
    """Whether the ticket's current type is the AI's own (it may change it again above the change threshold)."""
    return bool(ticket_type) and row is not None and row.undone_at is None and row.label == ticket_type


class CategoryWrites:
    def __init__(self, db: Database, *, capabilities: Callable[[str], Capabilities] | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self._capabilities = capabilities
        self._clock = clock

    async def _psa_type(self, session: AsyncSession, ticket: Ticket, label: str) -> str | None:
        """The PSA's id of type `label` on the ticket's board (None for a standalone ticket), or InvalidInput
        saying why the PSA could not take it."""
        if ticket.connection_id is None:
            return None
        conn = await session.get(PsaConnection, ticket.connection_id)
        if conn is None or self._capabilities is None or not self._capabilities(conn.kind).has(Feature.SET_TYPE):
            raise InvalidInput(f"Deskbridge cannot change a ticket's type in this PSA ({conn.kind if conn else '?'}) "
                               "yet.", hint="Set the type in the PSA itself.", field="type")
        rows = (await session.execute(
            select(PicklistItem.external_id, PicklistItem.parent_external_id).where(
                PicklistItem.connection_id == ticket.connection_id, PicklistItem.kind == "type",
                col(PicklistItem.active).is_(True), sa.func.lower(PicklistItem.name) == label.lower()))).all()
        for ext, parent in rows:
            if parent in ("", ticket.board_external_id or ""):
                return str(ext)
        board = ticket.board_name or ticket.board_external_id or "its board"
        raise InvalidInput(f"'{label}' is not an active type on {board} in the PSA.",
                           hint="Pick a type of that board, or run a picklist sync if it was just added.",
                           field="type")

    async def _levels(self, session: AsyncSession, ticket: Ticket) -> str:
        """What a category is on the ticket's PSA (TYPE, PAIR or TYPED; TYPE for a standalone ticket)."""
        if ticket.connection_id is None or self._capabilities is None:
            return TYPE
        conn = await session.get(PsaConnection, ticket.connection_id)
        return levels(self._capabilities(conn.kind)) if conn is not None else TYPE

    async def _typed(self, session: AsyncSession, ticket: Ticket, label: str | None
                     ) -> tuple[Callable[[], None], UpdateTicket]:
        """TYPED: the type (by name, on the ticket's board) and the subtype the board allows under it, as one
        op; the item stays as it is and must fit."""
        top, sub = split(label) if label else ("", None)
        type_ext = await self._psa_type(session, ticket, top) if top else None
        assert ticket.connection_id is not None  # TYPED: a PSA-backed ticket
        sub_ext, sub_name = await categories.resolve_subtype(session, ticket.connection_id, type_ext, top, sub) \
            if (sub and type_ext) else (None, None)
        await categories.item_fits(session, ticket.connection_id, type_ext, sub_ext,
                                   item=ticket.subcategory_external_id, item_name=ticket.subcategory_name)

        def set_typed() -> None:
            ticket.type_name = top or None
            ticket.category_external_id, ticket.category_name = sub_ext, sub_name
        clear_sub = "" if ticket.category_external_id else None
        return set_typed, UpdateTicket(type_external_id=type_ext, clear_type=not top,
                                       category_external_id=sub_ext or clear_sub)

    async def _target(self, session: AsyncSession, ticket: Ticket, label: str | None,
                      how: str) -> tuple[Callable[[], None], UpdateTicket]:
        """How to set `label` (None: clear) on the ticket, and the op for its PSA; InvalidInput if the PSA
        could not take it (checked against its picklists before anything is written)."""
        if how == TYPED:
            return await self._typed(session, ticket, label)
        if how == PAIR:
            top, sub = split(label) if label else ("", None)
            conn = await session.get(PsaConnection, ticket.connection_id)
            caps = self._capabilities(conn.kind) if conn is not None and self._capabilities else None
            cat = await categories.resolve(session, conn, caps or Capabilities(frozenset()), category=top,
                                           subcategory=sub)

            def set_pair() -> None:
                for k, v in cat.columns().items():
                    setattr(ticket, k, v)
            return set_pair, UpdateTicket(category_external_id=cat.category_external_id or "",
                                          subcategory_external_id=cat.subcategory_external_id or "")
        ext = await self._psa_type(session, ticket, label) if label else None

        def set_type() -> None:
            ticket.type_name = label
        return set_type, UpdateTicket(type_external_id=ext, clear_type=label is None)

    def _write(self, session: AsyncSession, actor: Actor, ticket: Ticket, how: str, label: str | None,
               change: tuple[Callable[[], None], UpdateTicket], data: dict[str, object], author: str
               ) -> tuple[TimelineEntry, UpdateTicket]:
        before = label_of(ticket, how)
        change[0]()
        ticket.updated_at = self._clock()
        ticket.version += 1
        entry = TimelineEntry(workspace_id=ticket.workspace_id, ticket_id=ticket.id,  # type: ignore[arg-type]
                              kind=EntryKind.CATEGORY_CHANGE, origin=actor.origin, author_member_id=actor.member_id,
                              author_name=author, data={"from": before, "to": label, **data},
                              occurred_at=self._clock())
        session.add(entry)
        return entry, change[1]

    @staticmethod
    async def _enqueue(session: AsyncSession, actor: Actor, ticket: Ticket,
                       written: tuple[TimelineEntry, UpdateTicket], who: str) -> None:
        entry, payload = written
        await session.flush()
        if ticket.connection_id is not None:
            enqueue(session, workspace_id=ticket.workspace_id, connection_id=ticket.connection_id,
                    payload=payload, ticket_id=ticket.id, actor=who, author_member_id=actor.member_id,
                    timeline_entry_id=entry.id)

    async def apply_ai(self, workspace_id: int, ticket_id: int, *, label: str, confidence: float,
                       model_version: int, decided_over: str | None) -> bool:
        """Apply the AI's category (the gate already said "apply"). Re-checked under the row lock: the ticket is
        still open with the type the decision saw, that type is empty or the AI's own, and no technician undid
        the AI here. True when written; False when there is nothing to do or the PSA could not take it."""
        actor = Actor(workspace_id=workspace_id, origin=Origin.SYSTEM, display=AI_AUTHOR)
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            ticket = await load_ticket(session, actor, f"id:{ticket_id}", for_update=True)
            row = (await session.execute(select(AiCategoryApply).where(
                AiCategoryApply.ticket_id == ticket_id))).scalar_one_or_none()
            how = await self._levels(session, ticket)
            current = label_of(ticket, how)
            if (not Stage(ticket.stage).is_open or current != decided_over or current == label
                    or (row is not None and row.undone_at is not None)
                    or (current and not ai_owned(current, row))):
                return False
            try:
                change = await self._target(session, ticket, label, how)
            except InvalidInput as exc:
                log.info("AI category not applied: %s", exc.message, extra={"ticket_id": ticket_id})
                return False
            written = self._write(session, actor, ticket, how, label, change,
                                  {"by_ai": True, "confidence": round(confidence, 4), "model_version": model_version},
                                  AI_AUTHOR)
            if row is None:
                session.add(AiCategoryApply(workspace_id=workspace_id, ticket_id=ticket_id, label=label,
                                            previous=decided_over or None, confidence=confidence,
                                            model_version=model_version, applied_at=self._clock()))
            else:  # the AI changes its own earlier value; `previous` stays what a person had left
                row.label, row.confidence, row.model_version, row.applied_at = (
                    label, confidence, model_version, self._clock())
            await self._enqueue(session, actor, ticket, written, f"ai:category v{model_version} ({confidence:.2f})")
            return True

    async def undo(self, actor: Actor, ref: int | str) -> str:
        """A technician undoes the AI's category: the ticket gets back what it had before (through the outbox),
        and the AI leaves this ticket's category alone from now on. Returns what the type is now."""
        _require_technician(actor)
        async with self.db.write(actor.scope) as session:
            ticket = await load_ticket(session, actor, ref, for_update=True)
            row = (await session.execute(select(AiCategoryApply).where(
                AiCategoryApply.ticket_id == ticket.id))).scalar_one_or_none()
            if row is None or row.undone_at is not None:
                raise Conflict("The AI has not set this ticket's category, so there is nothing to undo.",
                               hint="Change the type in the PSA, or pick a suggested one.")
            how = await self._levels(session, ticket)
            current = label_of(ticket, how)
            if current != row.label:
                raise Conflict(f"The category is now {current or 'empty'}, not the AI's {row.label}: "
                               "someone changed it since, so nothing was undone.", hint="Change it in the PSA.")
            change = await self._target(session, ticket, row.previous, how)
            written = self._write(session, actor, ticket, how, row.previous, change, {"undo_ai": True},
                                  actor.display)
            row.undone_at, row.undone_by = self._clock(), actor.display[:200]
            await self._enqueue(session, actor, ticket, written, actor.display)
            return row.previous or ""

    async def accept(self, actor: Actor, ref: int | str, label: str) -> bool:
        """A technician sets the ticket's category to `label` (one click on a suggestion): their choice, which
        the AI never changes. False when the ticket already has it."""
        _require_technician(actor)
        label = label.strip()
        if not label:
            raise InvalidInput("Which category?", hint="Pick one of the suggested categories.", field="type")
        async with self.db.write(actor.scope) as session:
            ticket = await load_ticket(session, actor, ref, for_update=True)
            how = await self._levels(session, ticket)
            if label_of(ticket, how) == label:
                return False
            change = await self._target(session, ticket, label, how)
            written = self._write(session, actor, ticket, how, label, change, {"accepted_ai_suggestion": True},
                                  actor.display)
            await self._enqueue(session, actor, ticket, written, actor.display)
            return True


def _require_technician(actor: Actor) -> None:
    if not actor.is_member or actor.customer_scope_id is not None:
        raise PermissionDenied("Only technicians can change a ticket's category.",
                               hint="Ask your MSP's technician to do this for you.")
