"""End users asking for help in Teams (rules in core/intake/requests.py; this module only translates).

Teams gives the bot a channel message only when it mentions @Deskbridge; in a chat with the bot it gets every
message. An end user (someone who is not a technician) may write to the bot outside a ticket's reply chain,
in a channel bound to a customer or in a contact's own chat with Deskbridge (core/chat/end_users.py binds
that chat to their customer). A message that is not a command, or `ticket new …`, is then a request for help.
The workspace option (core) picks what happens:
- `offer`: an offer card ("Open a ticket" / "No thanks") whose Action.Execute buttons are answered in place.
  Only the person who asked may accept it.
- `create`: a ticket at once.
- `off`: nothing (the message is then an unknown command).
In a channel the ticket's card is posted in the reply chain of their message, and that chain becomes the
ticket's thread. Their replies there (mentioning @Deskbridge) are their public replies, and technicians'
public replies appear there. A Teams chat has no reply chains, so in a contact's chat the card is posted in
the chat. A message opens one ticket at most, whatever the clicks, retries or redeliveries (core, keyed on
the message). Past their hourly limit their words go to their open ticket or are held, and they are told
which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from microsoft_teams.api.models.adaptive_card.adaptive_card_action_response import (
    AdaptiveCardActionCardResponse,
)

from bot.teams import cards
from bot.teams.incoming import Incoming
from bot.teams.poster import Target, message
from core.chat import ChannelInfo, grammar
from core.chat.text import over_limit_text
from core.context import Actor
from core.errors import DeskbridgeError, InvalidInput, PermissionDenied
from core.views import MessageView

if TYPE_CHECKING:
    from bot.teams.listeners import Listeners

PLATFORM = "teams"
OPEN, DISMISS = "request_open", "request_dismiss"
ACTIONS = (OPEN, DISMISS)
REPLY = "contact_reply"  # the Reply button under a note mirrored into a contact's own chat

OFFER = "Would you like a ticket for this? Our technicians will follow up here."
OPEN_BUTTON, NO_BUTTON = "Open a ticket", "No thanks"
ALREADY = "A ticket was already opened for that message; follow it in the message's replies."
DISMISSED = "No ticket was opened. Mention @Deskbridge again whenever you need help."
NOT_YOURS = "Only the person who asked can open this ticket."
NOT_YOURS_HINT = "Need help yourself? Mention @Deskbridge with what you need."
REPLY_BUTTON, REPLY_SEND = "Reply", "Send"
REPLY_PLACEHOLDER = "Your reply to this ticket"
REPLY_EMPTY, REPLY_EMPTY_HINT = "Write your reply first.", "Type it in the box above Send."
REPLY_NOT_YOURS = "That ticket is not one of your company's, so your reply was not added to it."
REPLY_NOT_YOURS_HINT = "Write to me here without Reply and a new request is opened for you."


def chat_source(conversation: str) -> str:
    """A note's origin in a chat (no reply chains): not echoed into that chat (TeamsNotifier)."""
    return f"{PLATFORM}:{conversation}:"


def opened_line(number: int | None, subject: str, *, in_channel: bool) -> str:
    """The confirmation once an end user's ticket is opened (where to follow it)."""
    ref = f"#{number}" if number else "Your ticket"
    where = ("Our technicians' replies appear in your message's replies; to add something, reply there and "
             "mention @Deskbridge." if in_channel else "Our technicians' replies appear in this chat.")
    return f"{ref} opened: {subject}. {where}"




def reply_card(ticket_id: int, number: int | None) -> dict[str, Any]:
    """What goes under a note mirrored into a contact's own chat (chats have no reply chains): a Reply button
    opening a box whose words are their reply to that very ticket (`TeamsRequests.on_reply`)."""
    about = f"Reply to ticket #{number}" if number else "Reply to this ticket"
    return {"type": "AdaptiveCard", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "version": "1.5",
            "body": [{"type": "TextBlock", "text": about, "wrap": True, "isSubtle": True, "size": "Small"}],
            "actions": [{"type": "Action.ShowCard", "title": REPLY_BUTTON, "card": {
                "type": "AdaptiveCard", "version": "1.5",
                "body": [{"type": "Input.Text", "id": "reply", "isMultiline": True, "maxLength": 4000,
                          "placeholder": REPLY_PLACEHOLDER}],
                "actions": [{"type": "Action.Execute", "title": REPLY_SEND, "verb": cards.VERB,
                             "data": {"action": REPLY, "ticket": ticket_id}}]}}]}


def offer_card(key: str, text: str, by: str) -> dict[str, Any]:
    """The offer: its buttons carry the message (key and words) and who may accept it."""
    card = cards.message_card(MessageView(text=OFFER))
    card["actions"] = [cards.execute(OPEN_BUTTON, OPEN, key=key, text=text, by=by),
                       cards.execute(NO_BUTTON, DISMISS, key=key, by=by)]
    return card


class TeamsRequests:
    """An end user's request for help in Teams (see module doc)."""

    def __init__(self, listeners: Listeners) -> None:
        self.ls = listeners
        self.s, self.c = listeners.s, listeners.c

    async def take(self, ws: int, inc: Incoming, activity_id: str, actor: Actor, info: ChannelInfo,
                   cmd: grammar.Command | None, text: str) -> bool:
        """Whether this message is an end user's request; if so it is handled here (offer or ticket)."""
        if actor.is_member or inc.thread_root or not info.is_customer_channel or not activity_id:
            return False
        if cmd is not None and not isinstance(cmd, grammar.NewTicket):
            return False
        words = (cmd.subject if isinstance(cmd, grammar.NewTicket) else text).strip()
        decision = await self.c.end_user_requests.on_channel_message(
            actor, customer_id=info.customer_id, text=words, in_thread=False)
        if decision.kind == "ignore":
            return False
        if not await self.c.chat.first_time(f"{PLATFORM}:{inc.tenant}", activity_id):
            return True  # a redelivered activity: answered the first time
        here = self._reply_target(inc, activity_id)
        if decision.kind == "create":
            line, posted = await self.open_and_post(ws, inc, actor, activity_id, words)
            if not posted:
                await self.s.poster.post(here, message(line, cards.message_card(MessageView(text=line))))
            return True
        await self.s.poster.post(here, message(OFFER, offer_card(activity_id, words, inc.aad_id)))
        return True

    @staticmethod
    def _reply_target(inc: Incoming, root: str) -> Target:
        """Their message's reply chain in a channel; the chat itself elsewhere (chats have no chains)."""
        if inc.conversation_type == "channel":
            return Target(f"{inc.base_conversation};messageid={root}", inc.service_url)
        return Target(inc.base_conversation, inc.service_url)

    async def open_and_post(self, ws: int, inc: Incoming, actor: Actor, root: str, text: str) -> tuple[str, bool]:
        """Open the ticket (once per message) and post its card where they asked: (the line to tell them,
        whether a card was posted)."""
        line, ticket_id = await self.open(inc, actor, root, text)
        if ticket_id is None:
            return line, False
        await self.post_card(ws, inc, actor, root, ticket_id)
        return line, True

    async def open(self, inc: Incoming, actor: Actor, root: str, text: str) -> tuple[str, int | None]:
        """Open the ticket (once per message): (the line to tell them, the ticket to post, if one was opened)."""
        email = await self.ls.email_of(inc)
        opened = await self.c.end_user_requests.open(
            actor, text, message_key=f"{PLATFORM}:{inc.base_conversation}:{root}", email=email,
            name=inc.user.name, user_key=f"{PLATFORM}:{inc.tenant}:{inc.aad_id}",
            source=None if inc.conversation_type == "channel" else chat_source(inc.base_conversation))
        if opened.outcome != "opened":
            return over_limit_text(opened.outcome, opened.number, opened.limit), None
        if opened.ticket_id is None:
            return ALREADY, None
        return opened_line(opened.number, opened.subject, in_channel=inc.conversation_type == "channel"), \
            opened.ticket_id

    async def post_card(self, ws: int, inc: Incoming, actor: Actor, root: str, ticket_id: int) -> None:
        """The ticket's card where they asked, remembered as the ticket's thread there."""
        view = await self.c.chat_views.ticket(actor, f"id:{ticket_id}", audience="customer")
        channel = inc.conversation_type == "channel"
        card_id = await self.s.poster.post(self._reply_target(inc, root),
                                           message(cards.fallback(view), cards.ticket_card(view)))
        ref: dict[str, Any] = {"conversation_id": inc.base_conversation, "service_url": inc.service_url,
                               "audience": view.audience}
        if channel:
            ref["card_ts"] = card_id  # the card is a reply in their message's chain, whose root is theirs
        await self.c.chat.record_post(ws, ticket_id=view.summary.id, platform=PLATFORM, team_id=inc.tenant,
                                      channel_id=inc.user.channel_id or inc.base_conversation,
                                      message_ts=root if channel else card_id, ref=ref)

    async def on_click(self, ws: int, inc: Incoming, data: dict[str, Any]) -> Any:
        """The offer's buttons: accept (the ticket is opened now, its card posted after the answer) or not."""
        if str(data.get("by") or "") != inc.aad_id:
            raise PermissionDenied(NOT_YOURS, hint=NOT_YOURS_HINT)
        if data.get("action") == DISMISS:
            return _card_answer(MessageView(text=DISMISSED))
        key, text = str(data.get("key") or ""), str(data.get("text") or "")
        if not key or not text.strip():
            raise InvalidInput("That button's data was not understood.", hint="Write your message again.")
        actor, _ = await self.ls.actor(ws, inc)
        try:
            line, ticket_id = await self.open(inc, actor, key, text)
        except DeskbridgeError as exc:
            return _card_answer(MessageView(text=exc.message, kind="error", hint=exc.hint))
        if ticket_id is not None and not self.s.work.submit(lambda: self.post_card(ws, inc, actor, key, ticket_id)):
            line += " Its card could not be posted just now: mention @Deskbridge with `ticket N` to see it."
        return _card_answer(MessageView(text=line, kind="success"))


    async def on_reply(self, ws: int, inc: Incoming, data: dict[str, Any]) -> Any:
        """Reply under a note in a contact's chat: their words become their public reply on that ticket (as
        in a channel's reply chain), if the ticket is their company's; the card says what happened. Refused
        replies come back in the answer, so nothing they wrote is lost."""
        text = str(data.get("reply") or "").strip()
        if not text:
            raise InvalidInput(REPLY_EMPTY, hint=REPLY_EMPTY_HINT)
        try:
            ticket_id = int(data.get("ticket") or 0)
        except (TypeError, ValueError):
            ticket_id = 0
        actor, _ = await self.ls.actor(ws, inc)
        try:
            if actor.is_member or ticket_id <= 0:
                raise PermissionDenied(REPLY_NOT_YOURS, hint=REPLY_NOT_YOURS_HINT)
            out = await self.c.chat_commands.thread_message(
                actor, ticket_id, text, customer_reads=True, source=chat_source(inc.base_conversation),
                author_email=await self.ls.email_of(inc), as_contact=True)
            if out is None:
                raise PermissionDenied(REPLY_NOT_YOURS, hint=REPLY_NOT_YOURS_HINT)
        except DeskbridgeError as exc:
            return _card_answer(MessageView(text=exc.message, kind="error", hint=exc.hint,
                                            lines=(f"What you wrote: {text}",)))
        if out.view is not None:
            self.s.work.submit(lambda: self.s.notifier.refresh_cards(ws, ticket_id))
        return _card_answer(MessageView(text=f"Your reply was added to ticket #{out.view.summary.number}."
                                        if out.view is not None and out.view.summary.number
                                        else "Your reply was added to the ticket.", kind="success"))


def _card_answer(view: MessageView) -> AdaptiveCardActionCardResponse:
    return AdaptiveCardActionCardResponse.model_validate({"statusCode": 200, "value": cards.message_card(view)})
