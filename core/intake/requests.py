"""End users asking for help in chat: the rules, for every chat surface (the surface only translates).

In a channel bound to a customer, a top-level message from someone who is not a technician is a request
for help. The workspace option `end_user_requests` decides what happens: `offer` (default: the person
is asked, privately, whether to open a ticket), `create` (a ticket is opened at once), `off`. Chatter in
threads, bots, technicians, unbound channels and empty messages are left alone.

The ticket goes to the channel's customer, whatever anyone types; the person is matched to a contact of
that customer by e-mail; who asked (and, for someone who is not a known contact, a request to confirm them)
is the ticket's first internal note. Their words, and nothing else, are the ticket's description in full (the subject is the first line, shortened). Opening is idempotent on
the chat message: a second click or a redelivered event never opens a second ticket. A DM with the bot
from a linked contact is handled the same way (core/chat/end_users.py binds the DM to their customer).

Sender limit: one person (their chat identity, contact or not) opens at most `end_user_requests_per_hour`
tickets per hour (0: no limit). Past it nothing is lost: their words are added to the newest open ticket
they opened (as their reply), or, with none open, kept (`held`, `deskbridge intake held`) for a
technician; the answer says which and what to do next. A ticket the PSA would refuse (its board needs a
contact and the person is not one) is not opened: their words are held the same way, with the reason
(outcome `kept`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from core.context import Actor
from core.errors import InvalidInput, PermissionDenied
from core.scheduling import forget_event, mark_event_processed
from core.ticket_batch import ticket_batch
from core.tickets import TicketService, visible
from store.db import Database, Scope
from store.enums import OPEN_STAGES
from store.tables import Contact, EndUserRequest, Ticket, Workspace
from store.types import utcnow

MODES = ("offer", "create", "off")
OPTION = "end_user_requests"
SUBJECT_CHARS = 120
SOURCE = "chat-request"  # ProcessedEvent source: one ticket per chat message
LIMIT_OPTION = "end_user_requests_per_hour"
DEFAULT_LIMIT = 5
_OPEN = tuple(s.value for s in OPEN_STAGES)


@dataclass(frozen=True, slots=True)
class Decision:
    kind: str  # ignore, offer, create


@dataclass(frozen=True, slots=True)
class Opened:
    ticket_id: int | None  # None: this message had opened one already (again=True), or it was held
    number: int | None
    subject: str
    contact_known: bool
    again: bool = False
    outcome: str = "opened"  # opened; over the hourly limit: added (to `ticket_id`, their open ticket) or held;
    # kept: a ticket the PSA would refuse (e.g. its board needs a contact), the words held for a technician
    limit: int = 0


@dataclass(frozen=True, slots=True)
class Held:
    """An end user's message kept for a technician (over their limit with no open ticket to add it to)."""

    id: int
    customer_id: int | None
    user_key: str
    text: str
    created_at: datetime


def subject_of(text: str) -> str:
    """The first non-empty line, shortened on a word boundary."""
    first = next((line.strip() for line in text.splitlines() if visible(line)), "")
    if len(first) <= SUBJECT_CHARS:
        return first
    cut = first[:SUBJECT_CHARS - 1].rsplit(" ", 1)[0]
    return (cut or first[:SUBJECT_CHARS - 1]) + "…"


def decide_kind(actor: Actor, *, customer_id: int | None, text: str, in_thread: bool, from_bot: bool,
                mode: str) -> Decision:
    """The pure rule (see module doc)."""
    if (mode == "off" or customer_id is None or actor.is_member or in_thread or from_bot
            or not visible(text) or text.strip().startswith("/")):  # shows nothing: zero-width, controls
        return Decision("ignore")
    return Decision("create" if mode == "create" else "offer")


class EndUserRequests:
    def __init__(self, db: Database, *, tickets: TicketService, clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.tickets, self._clock = db, tickets, clock

    async def mode(self, workspace_id: int) -> str:
        async with self.db.read(Actor.system(workspace_id).scope) as session:
            ws = await session.get(Workspace, workspace_id)
        mode = str((ws.settings if ws else {}).get(OPTION) or "offer")
        return mode if mode in MODES else "offer"

    async def on_channel_message(self, actor: Actor, *, customer_id: int | None, text: str, in_thread: bool,
                                 from_bot: bool = False) -> Decision:
        """What to do with a chat message (see module doc)."""
        if customer_id is None or actor.is_member:
            return Decision("ignore")
        return decide_kind(actor, customer_id=customer_id, text=text, in_thread=in_thread, from_bot=from_bot,
                           mode=await self.mode(actor.workspace_id))

    async def open(self, actor: Actor, text: str, *, message_key: str, email: str | None,
                   name: str | None, user_key: str | None = None, source: str | None = None) -> Opened:
        """Open a ticket for an end user's message under the channel's customer (see module doc); past the
        person's hourly limit (`user_key`: their chat identity) the words go to their open ticket or are held
        (`source`: where they were written, so a surface does not echo them back there)."""
        customer_id = actor.customer_scope_id
        if actor.is_member or customer_id is None or customer_id < 0:
            raise PermissionDenied("Tickets are opened here for the customer of this channel only.",
                                   hint="Technicians: use /ticket new.")
        body = text.strip()
        if not visible(body):
            raise InvalidInput("The message is empty.", hint="Write what you need help with.")
        async with self.db.read(actor.scope) as session:
            contact = None
            if email:
                contact = (await session.exec(select(Contact).where(
                    Contact.customer_id == customer_id, sa.func.lower(Contact.email) == email.strip().lower()))).first()
        key = f"{actor.workspace_id}:{message_key}"[:200]
        if not await mark_event_processed(self.db, SOURCE, key, actor.workspace_id):
            return Opened(None, None, subject_of(body), contact is not None, again=True)
        try:
            limit = await self._limit(actor.workspace_id)
            if user_key and limit and await self._opened_within_hour(actor, user_key) >= limit:
                return await self._over_limit(actor, body, key, user_key, email, contact is not None, limit,
                                              source=source)
            who = f"{name or 'someone'}" + (f" <{email}>" if email else "")
            # Who asked, and a technician's to-do, are the MSP's business: an internal note, never the
            # description (the customer reads it here, in the PSA's portal and in its e-mails).
            provenance = (f"Asked in chat by {who}." if contact else
                          f"Asked in chat by {who}, who is not a known contact of this customer: confirm the "
                          "contact.")
            # Opened on the customer's behalf: the ticket service lets only technicians create from chat, and
            # this rule (a customer channel, the channel's own customer) is what allows it here.
            opener = replace(actor, is_member=True, member_id=None)
            try:
                async with ticket_batch(self.tickets, opener) as batch:
                    made = await batch.create(subject=subject_of(body), description=body, customer_id=customer_id,
                                              contact_id=contact.id if contact else None)
                    await batch.note(made, provenance)
            except InvalidInput as exc:  # the PSA would refuse this ticket (e.g. its board needs a contact):
                # their words are kept for a technician, with the reason; never dropped
                await self._record(actor, user_key or "", key, "held", None,
                                   text=f"{body}\n\n(Not opened as a ticket: {exc.message} {provenance})")
                return Opened(None, None, subject_of(body), contact is not None, outcome="kept")
        except Exception:
            await forget_event(self.db, SOURCE, key)  # refused: asking again may work (after the cause is fixed)
            raise
        assert made.id is not None
        if user_key:
            await self._record(actor, user_key, key, "opened", made.id)
        return Opened(made.id, made.number, made.subject, contact is not None)

    async def _limit(self, workspace_id: int) -> int:
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            ws = await session.get(Workspace, workspace_id)
        value = (ws.settings if ws else {}).get(LIMIT_OPTION, DEFAULT_LIMIT)
        return int(value) if isinstance(value, int) and value >= 0 else DEFAULT_LIMIT

    async def _opened_within_hour(self, actor: Actor, user_key: str) -> int:
        since = self._clock() - timedelta(hours=1)
        async with self.db.read(actor.scope) as session:
            return int((await session.exec(select(sa.func.count()).select_from(EndUserRequest).where(
                col(EndUserRequest.user_key) == user_key[:200], col(EndUserRequest.outcome) == "opened",
                col(EndUserRequest.created_at) >= since))).one())

    async def _over_limit(self, actor: Actor, body: str, key: str, user_key: str, email: str | None,
                          contact_known: bool, limit: int, *, source: str | None = None) -> Opened:
        """Past the limit: their words join the newest open ticket they opened here, else are held."""
        async with self.db.read(actor.scope) as session:
            target = (await session.exec(select(Ticket).join(
                EndUserRequest, col(EndUserRequest.ticket_id) == col(Ticket.id)).where(
                col(EndUserRequest.user_key) == user_key[:200], col(Ticket.customer_id) == actor.customer_scope_id,
                col(Ticket.stage).in_(_OPEN)).order_by(col(Ticket.id).desc()).limit(1))).first()
        if target is not None:
            detail = await self.tickets.contact_reply(actor, f"id:{target.id}", body, contact_email=email,
                                                      source=source)
            await self._record(actor, user_key, key, "added", target.id)
            return Opened(target.id, detail.summary.number, detail.summary.subject, contact_known,
                          outcome="added", limit=limit)
        await self._record(actor, user_key, key, "held", None, text=body)
        return Opened(None, None, subject_of(body), contact_known, outcome="held", limit=limit)

    async def _record(self, actor: Actor, user_key: str, key: str, outcome: str, ticket_id: int | None, *,
                      text: str = "") -> None:
        async with self.db.write(actor.scope) as session:
            session.add(EndUserRequest(workspace_id=actor.workspace_id, user_key=user_key[:200], message_key=key,
                                       outcome=outcome, ticket_id=ticket_id, customer_id=actor.customer_scope_id,
                                       text=text, created_at=self._clock()))

    async def held(self, workspace_id: int, limit: int = 50) -> list[Held]:
        """Messages kept for a technician, newest first (`deskbridge intake held`)."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(EndUserRequest).where(col(EndUserRequest.outcome) == "held")
                                       .order_by(col(EndUserRequest.id).desc()).limit(limit))).all()
        return [Held(r.id, r.customer_id, r.user_key, r.text, r.created_at) for r in rows]  # type: ignore[arg-type]
