""""Create ticket" on an alert that made no ticket, in Teams (core/intake/offers.py decides; this translates).

The notifier posts the offer (the alert, a customer choice, the button) in technicians' dispatch channels.
The button is an Action.Execute whose data carries the alert and the chosen customer (Teams merges the
card's inputs into it). The ticket is created for the clicking technician (core: one ticket per alert,
whatever double clicks or retries); the offer is replaced in place by what was done, and the ticket's card
is posted in the offer's reply chain, which becomes the ticket's thread there. A second click is told that
the alert already has its ticket; a refusal says why and what to do, and leaves the offer as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from microsoft_teams.api.models.adaptive_card.adaptive_card_action_response import (
    AdaptiveCardActionCardResponse,
    AdaptiveCardActionMessageResponse,
)

from bot.teams import cards
from bot.teams.incoming import Incoming
from bot.teams.poster import Target, message
from core.context import Actor
from core.errors import InvalidInput
from core.numbers import whole
from core.views import MessageView

if TYPE_CHECKING:
    from bot.teams.listeners import Listeners

PLATFORM = "teams"
CREATE = "alert_create"


async def create(ls: Listeners, ws: int, inc: Incoming, data: dict[str, Any]) -> Any:
    """The offer's button (see module doc). DeskbridgeError is answered by the caller, as any card action."""
    alert = str(data.get("alert") or "")
    if whole(alert) is None:
        raise InvalidInput("That button's data was not understood.", hint="Use `deskbridge intake triage`.")
    actor, _ = await ls.actor(ws, inc)
    done = await ls.c.alert_offers.create(actor, whole(alert) or 0, str(data.get("customer") or "") or None)
    if done.again or done.ticket_id is None:
        return AdaptiveCardActionMessageResponse(value=done.line)  # the offer stays as it is
    ticket_id, root = done.ticket_id, inc.thread_root or ""
    if root and not ls.s.work.submit(lambda: _post_card(ls, ws, inc, actor, root, ticket_id)):
        done_line = done.line + " Its card could not be posted just now: `ticket` with its number shows it."
    else:
        done_line = done.line
    return cards_answer(done_line)


def cards_answer(line: str) -> Any:
    """The offer, replaced in place by what was done."""
    return AdaptiveCardActionCardResponse.model_validate(
        {"statusCode": 200, "value": cards.message_card(MessageView(text=line, kind="success"))})


async def _post_card(ls: Listeners, ws: int, inc: Incoming, actor: Actor, root: str, ticket_id: int) -> None:
    """The new ticket's card in the offer's reply chain, remembered as the ticket's thread there."""
    view = await ls.c.chat_views.ticket(actor, f"id:{ticket_id}")
    card_id = await ls.s.poster.post(Target(f"{inc.base_conversation};messageid={root}", inc.service_url),
                                     message(cards.fallback(view), cards.ticket_card(view)))
    await ls.c.chat.record_post(ws, ticket_id=ticket_id, platform=PLATFORM, team_id=inc.tenant,
                                channel_id=inc.user.channel_id or inc.base_conversation, message_ts=root,
                                ref={"conversation_id": inc.base_conversation, "service_url": inc.service_url,
                                     "audience": view.audience, "card_ts": card_id})
