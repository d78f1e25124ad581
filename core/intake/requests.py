"""End users asking for help in chat: the rules, for every chat surface (the surface only translates).

In a channel bound to a customer, a top-level message from someone who is not a technician is a request
for help. The workspace option `end_user_requests` decides what happens: `offer` (default: the person
is asked, privately, whether to open a ticket), `create` (a ticket is opened at once), `off`. Chatter in
threads, bots, technicians, unbound channels and empty messages are left alone.

The ticket goes to the channel's customer, whatever anyone types; the person is matched to a contact of
that customer by e-mail, and otherwise named in the description for a technician to confirm. Their words
are the ticket's description in full (the subject is the first line, shortened). Opening is idempotent on
the chat message: a second click or a redelivered event never opens a second ticket.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlmodel import select

from core.context import Actor
from core.errors import InvalidInput, PermissionDenied
from core.scheduling import forget_event, mark_event_processed
from core.tickets import TicketService
from store.db import Database
from store.tables import Contact, Workspace

MODES = ("offer", "create", "off")
OPTION = "end_user_requests"
SUBJECT_CHARS = 120
SOURCE = "chat-request"  # ProcessedEvent source: one ticket per chat message


@dataclass(frozen=True, slots=True)
class Decision:
    kind: str  # ignore, offer, create


@dataclass(frozen=True, slots=True)
class Opened:
    ticket_id: int | None  # None: this message had opened one already (again=True)
    number: int | None
    subject: str
    contact_known: bool
    again: bool = False


def subject_of(text: str) -> str:
    """The first non-empty line, shortened on a word boundary."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(first) <= SUBJECT_CHARS:
        return first
    cut = first[:SUBJECT_CHARS - 1].rsplit(" ", 1)[0]
    return (cut or first[:SUBJECT_CHARS - 1]) + "…"


def decide_kind(actor: Actor, *, customer_id: int | None, text: str, in_thread: bool, from_bot: bool,
                mode: str) -> Decision:
    """The pure rule (see module doc)."""
    if (mode == "off" or customer_id is None or actor.is_member or in_thread or from_bot
            or not text.strip() or text.strip().startswith("/")):
        return Decision("ignore")
    return Decision("create" if mode == "create" else "offer")


class EndUserRequests:
    def __init__(self, db: Database, *, tickets: TicketService) -> None:
        self.db, self.tickets = db, tickets

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
                   name: str | None) -> Opened:
        """Open a ticket for an end user's message under the channel's customer (see module doc)."""
        customer_id = actor.customer_scope_id
        if actor.is_member or customer_id is None or customer_id < 0:
            raise PermissionDenied("Tickets are opened here for the customer of this channel only.",
                                   hint="Technicians: use /ticket new.")
        body = text.strip()
        if not body:
            raise InvalidInput("The message is empty.", hint="Write what you need help with.")
        async with self.db.read(actor.scope) as session:
            contact = None
            if email:
                contact = (await session.exec(select(Contact).where(
                    Contact.customer_id == customer_id, sa.func.lower(Contact.email) == email.strip().lower()))).first()
        key = f"{actor.workspace_id}:{message_key}"[:200]
        if not await mark_event_processed(self.db, SOURCE, key, actor.workspace_id):
            return Opened(None, None, subject_of(body), contact is not None, again=True)
        who = f"{name or 'someone'}" + (f" <{email}>" if email else "")
        footer = (f"\n\n— Asked in chat by {who}." if contact else
                  f"\n\n— Asked in chat by {who}, who is not a known contact of this customer: confirm the contact.")
        # Opened on the customer's behalf: the ticket service lets only technicians create from chat, and this
        # rule (a customer channel, the channel's own customer) is what allows it here.
        opener = replace(actor, is_member=True, member_id=None)
        try:
            detail = await self.tickets.create(opener, subject=subject_of(body), description=body + footer,
                                               customer_id=customer_id, contact_id=contact.id if contact else None)
        except Exception:
            await forget_event(self.db, SOURCE, key)  # refused: asking again may work (after the cause is fixed)
            raise
        s = detail.summary
        return Opened(s.id, s.number, s.subject, contact is not None)
