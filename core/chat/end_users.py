"""End users beyond their customer's channel (issue 21): a PSA contact recognised by their verified e-mail.

In a channel bound to a customer, everyone who is not a technician acts for that customer (identity.py).
Elsewhere (a DM with the bot, a channel bound to no customer) Deskbridge knows nobody by default; a chat
user whose platform-verified e-mail is a contact's of exactly one customer acts as that contact:
- an `Actor` that is not a member, scoped to the contact's customer (every rule of a customer channel then
  holds: the customer's view only, their customer's tickets only);
- a DM is bound to that customer with customer visibility the first time, so cards, notes and updates
  posted there follow the customer rules (visibility.py) like in any channel the customer reads;
- their message in a ticket's thread is their public reply when the ticket is their customer's;
- "my tickets" lists the tickets whose contact is them, never other people's.
An e-mail found at several customers, or at none, is nobody: the surface says whom to ask instead.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col, select

from core.chat.bindings import Bindings
from core.chat.models import ChannelInfo, ChatUser
from core.context import Actor
from core.errors import PermissionDenied
from store.db import Database, Scope
from store.enums import BindingKind, Origin
from store.tables import ChannelBinding, Contact, Customer, Ticket


def not_a_contact() -> PermissionDenied:
    """The refusal for someone who is not one customer's contact, saying whom to ask instead."""
    return PermissionDenied(
        "Deskbridge does not know you yet: your e-mail is not a contact of one of your MSP's customers.",
        hint="Ask for help in your company's support channel, or e-mail your MSP's support address; a "
             "technician can add you as a contact.")


class EndUsers:
    """Contacts in chat outside their customer's channels (see module doc)."""

    def __init__(self, db: Database, *, bindings: Bindings) -> None:
        self.db, self.bindings = db, bindings

    async def contacts(self, workspace_id: int, email: str | None) -> tuple[int | None, tuple[int, ...]]:
        """(the one customer whose active contacts have this e-mail, those contact ids); (None, ()) when
        there is no such contact, or they belong to several customers (never guess between customers)."""
        if not email or "@" not in email:
            return None, ()
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(col(Contact.id), col(Contact.customer_id)).join(
                Customer, col(Customer.id) == col(Contact.customer_id)).where(
                sa.func.lower(Contact.email) == email.strip().lower(), col(Customer.active) == sa.true()))).all()
        customers = {c for _, c in rows if c is not None}
        if len(customers) != 1:
            return None, ()
        return customers.pop(), tuple(int(i) for i, _ in rows if i is not None)

    async def actor_for(self, workspace_id: int, user: ChatUser, email: str | None) -> tuple[Actor, ChannelInfo]:
        """The contact's actor (see module doc); a DM is bound to their customer first. PermissionDenied
        (saying whom to ask) for someone who is not one customer's contact."""
        customer_id, _ = await self.contacts(workspace_id, email)
        if customer_id is None:
            raise not_a_contact()
        info = await self.bindings.channel(workspace_id, user.platform, user.team_id, user.channel_id)
        if user.is_dm and user.channel_id and info.customer_id != customer_id:
            info = await self._bind_dm(workspace_id, user, customer_id)
        origin = Origin(user.platform) if user.platform in {o.value for o in Origin} else Origin.SYSTEM
        display = f"{user.platform}:{user.user_id}" + (f" ({user.name})" if user.name else "")
        return Actor(workspace_id=workspace_id, origin=origin, display=display, is_member=False,
                     customer_scope_id=customer_id), info

    async def _bind_dm(self, workspace_id: int, user: ChatUser, customer_id: int) -> ChannelInfo:
        """The DM becomes a channel the customer reads, bound to their customer (one binding per DM)."""
        where = (col(ChannelBinding.platform) == user.platform, col(ChannelBinding.team_id) == user.team_id,
                 col(ChannelBinding.channel_id) == user.channel_id)
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            await session.execute(sa.delete(ChannelBinding).where(*where))
            session.add(ChannelBinding(workspace_id=workspace_id, platform=user.platform, team_id=user.team_id,
                                       channel_id=str(user.channel_id), kind=BindingKind.CUSTOMER,
                                       customer_id=customer_id, visibility="customer",
                                       created_by=f"end user DM {user.platform}:{user.user_id}"[:128]))
        self.bindings.invalidate()
        return await self.bindings.channel(workspace_id, user.platform, user.team_id, user.channel_id)

    async def their_tickets(self, actor: Actor, email: str | None) -> tuple[int, ...]:
        """Ids of the tickets whose contact is this person (within the actor's customer), newest first."""
        customer_id, contact_ids = await self.contacts(actor.workspace_id, email)
        if customer_id is None or customer_id != actor.customer_scope_id or not contact_ids:
            return ()
        async with self.db.read(actor.scope) as session:
            ids = (await session.exec(select(col(Ticket.id)).where(
                col(Ticket.customer_id) == customer_id, col(Ticket.contact_id).in_(contact_ids))
                .order_by(col(Ticket.id).desc()).limit(500))).all()
        return tuple(int(i) for i in ids if i is not None)

    async def is_their_customers(self, actor: Actor, ticket_id: int) -> bool:
        """Whether a ticket belongs to the (end user) actor's customer."""
        if actor.is_member or actor.customer_scope_id is None or actor.customer_scope_id < 0:
            return False
        async with self.db.read(actor.scope) as session:
            ticket = await session.get(Ticket, ticket_id)
        return ticket is not None and ticket.customer_id == actor.customer_scope_id
