""""Create ticket from this alert" in chat (issue 21): alerts that made no ticket, offered to technicians.

An alert whose customer could not be found waits in triage (correlate.py) and is told once, when it gets
there (`AlertNeedsTicket`). It is offered in every technicians' channel bound `dispatch` that is bound to no
customer and read by no customer: an alert without a customer is nobody's customer's business, and the RMM's
details are the MSP's. The offer (`AlertOfferView`) shows the alert and the customers to pick from (the
first `CHOICES` by name; the hint names `deskbridge intake map` for the rest) with a "Create ticket" button.
A click is `AlertIntake.create_ticket` for the clicking technician: one ticket, prefilled from the alert's
latest event, linked to it, in one transaction. A second click, or a retry, finds the alert on its open
ticket and is told so (`Created.again`); nothing is created twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.chat.service import ChatService, ChatViews
from core.context import Actor
from core.errors import Conflict, InvalidInput, PermissionDenied
from core.hints import LINK_FIRST_HINT
from core.intake.alerts import AlertIntake
from core.notify import AlertNeedsTicket
from core.views import AlertOfferView

CHOICES = 100  # Slack's static select and a Teams choice set both show up to 100 choices


@dataclass(frozen=True, slots=True)
class Created:
    ticket_id: int | None
    number: int | None
    line: str  # what to tell the channel
    again: bool = False  # the alert already had its ticket: nothing was created


class AlertOffers:
    def __init__(self, *, chat: ChatService, views: ChatViews, intake: AlertIntake) -> None:
        self.chat, self.views, self.intake = chat, views, intake

    async def channels(self, workspace_id: int, platform: str) -> list[tuple[str, str]]:
        """(team, channel) of the technicians' channels that get alert offers (see module doc)."""
        found = await self.chat.dispatch_channels(workspace_id, platform, customer_id=None)
        return [(team, channel) for team, channel, audience in found if audience == "tech"]

    async def view(self, event: AlertNeedsTicket) -> AlertOfferView:
        """The offer for an alert in triage: what it is, and the customers a technician may pick."""
        options = await self.views.customer_options(Actor.system(event.workspace_id), "", limit=CHOICES + 1)
        lines = [f"Device: {event.device}"] if event.device else []
        lines.append("No customer was found for it, so no ticket was created.")
        hint = "Pick its customer and create a ticket here."
        if len(options) > CHOICES:
            hint += (f" Only the first {CHOICES} customers are listed: for another, map the device, site or "
                     "organisation with `deskbridge intake map` (its alerts then find the customer).")
        return AlertOfferView(alert_id=event.alert_id,
                              title=f"Alert · {event.source_name} · {event.severity} · {event.summary[:200]}",
                              lines=tuple(lines), hint=hint, customers=tuple(options[:CHOICES]))

    async def create(self, actor: Actor, alert_id: int, customer: str | None) -> Created:
        """The offer's button: one ticket for the alert under the chosen customer (see module doc)."""
        if not actor.is_member:
            raise PermissionDenied("Only technicians can create tickets from alerts.", hint=LINK_FIRST_HINT)
        customer_id = None
        if customer:
            choice = await self.views.customer_choice(actor, customer)
            if choice is None:
                raise InvalidInput("That customer cannot be picked here.", field="customer",
                                   hint="Pick one of the listed customers.")
            customer_id = int(choice.value)
        try:
            ticket_id, number = await self.intake.create_ticket(actor, alert_id, customer_id)
        except Conflict as exc:
            return Created(None, None, f"{exc.message} {exc.hint or ''}".strip(), again=True)
        ref = f"#{number}" if number else "A ticket"
        return Created(ticket_id, number, f"{ref} was created from this alert; its card follows.")
