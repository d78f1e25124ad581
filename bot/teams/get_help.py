"""The "Get help" welcome card in Teams customer channels and chats (words and record in core/intake/help_post.py).

Teams has no pinning for bots (Graph pins chat messages only, never channel posts), so Slack's pinned message
is, in Teams, a welcome card with a *Get help* button, kept one per conversation:
- posted when a channel or group chat is bound to a customer (`@Deskbridge bind customer …`, the workspace
  taking requests from chat), and when the app is installed into a team or chat that is bound already (a
  reinstall finds every bound channel of the team from the stored conversation references);
- binding again updates the same card in place (it names the customer, so a re-bind to another customer
  shows); a card someone deleted is posted again; two binds at once keep the oldest (HelpPosts);
- unbinding the customer deletes it; if Teams refuses the delete, the card is replaced by one saying the
  conversation no longer takes requests. Either way it is forgotten.
All posts go through the paced poster to the stored conversation reference (bot/teams/poster.py).

The button opens a dialog (`task/fetch`): a one-field form for the customer's people, scoped to the channel's
customer whatever anyone sends. Technicians, unbound conversations and requests switched off get a message
saying what to do instead. Sending the form (`task/submit`) opens their request through core
(core/intake/requests.py): one ticket per form (the key is the form's id, so a double click or a retry opens
nothing twice), someone who is no known contact still gets a ticket (the contact to be confirmed by a
technician), the ticket's card is posted in the conversation (its reply chain is the ticket's thread), and
the answer says where to follow it. An empty form comes back with the reason; a refused one comes back with
the reason and their words, so nothing they wrote is lost.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from microsoft_teams.api.models.attachment.attachment import Attachment
from microsoft_teams.api.models.task_module.task_module_continue_response import TaskModuleContinueResponse
from microsoft_teams.api.models.task_module.task_module_message_response import TaskModuleMessageResponse
from microsoft_teams.api.models.task_module.task_module_response import TaskModuleResponse
from microsoft_teams.api.models.task_module.task_module_task_info import CardTaskModuleTaskInfo

from bot.teams.incoming import Incoming, incoming
from bot.teams.poster import CARD, PostRefused, Target, message
from core.chat.text import MENTION, over_limit_text
from core.context import Actor
from core.errors import DeskbridgeError
from core.intake import help_post as h

if TYPE_CHECKING:
    from bot.teams.listeners import Listeners

log = logging.getLogger("deskbridge.teams.help")

PLATFORM = "teams"
DIALOG = "get_help"  # the welcome card's button (task/fetch) and the form's Send (task/submit)
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
TITLE = "Need help from IT?"
BODY = ("Press Get help, tell us what is wrong, and we open a ticket for you. Its card is posted here: our "
        "technicians' replies appear under it, and you can reply there (mention @Deskbridge).")
FOR = "Requests here are opened for {customer}."
CLOSED = "This conversation no longer takes help requests here."
OPENED_CHANNEL = ("{ref} opened: {subject}. Its card is posted in this channel: our technicians' replies appear "
                  "under it; to add something, reply there and mention @Deskbridge.")
OPENED_CHAT = "{ref} opened: {subject}. Its card is posted in this chat, and our technicians' replies appear here."
ALREADY = "This form was sent already, and its ticket is open; follow it under its card here."
WROTE = "What you wrote:"


def welcome_card(customer: str | None) -> dict[str, Any]:
    """The welcome card: what it is for, whose requests it opens, and the Get help button (a dialog)."""
    body: list[dict[str, Any]] = [{"type": "TextBlock", "text": TITLE, "weight": "Bolder", "size": "Medium",
                                   "wrap": True},
                                  {"type": "TextBlock", "text": BODY, "wrap": True}]
    if customer:
        body.append({"type": "TextBlock", "text": FOR.format(customer=customer), "wrap": True, "isSubtle": True,
                     "size": "Small"})
    return {"type": "AdaptiveCard", "$schema": SCHEMA, "version": "1.5", "body": body,
            "actions": [{"type": "Action.Submit", "title": h.BUTTON, "style": "positive",
                         "data": {"msteams": {"type": "task/fetch"}, "dialog_id": DIALOG}}]}


def closed_card() -> dict[str, Any]:
    """What replaces the card when Teams refuses to delete it on unbind (no button: nothing to press)."""
    return {"type": "AdaptiveCard", "$schema": SCHEMA, "version": "1.5",
            "body": [{"type": "TextBlock", "text": CLOSED, "wrap": True, "isSubtle": True},
                     {"type": "TextBlock", "text": h.NOT_BOUND_HINT, "wrap": True, "size": "Small"}]}


def form_card(form_id: str, *, text: str = "", error: str | None = None) -> dict[str, Any]:
    """The dialog's form: one box (given back filled in, with the reason, when it was refused)."""
    body: list[dict[str, Any]] = []
    if error:
        body.append({"type": "TextBlock", "text": error, "wrap": True, "color": "Attention"})
    body.append({"type": "Input.Text", "id": "text", "label": h.FORM_LABEL, "isMultiline": True,
                 "maxLength": h.MAX_CHARS, "placeholder": h.FORM_PLACEHOLDER, "value": text})
    return {"type": "AdaptiveCard", "$schema": SCHEMA, "version": "1.5", "body": body,
            "actions": [{"type": "Action.Submit", "title": h.FORM_SUBMIT,
                         "data": {"dialog": DIALOG, "form": form_id}}]}


def _form(form_id: str, **kw: Any) -> TaskModuleResponse:
    card = Attachment(content_type=CARD, content=form_card(form_id, **kw))
    return TaskModuleResponse(task=TaskModuleContinueResponse(value=CardTaskModuleTaskInfo(
        title=h.FORM_TITLE, card=card, height="medium", width="medium")))


def _say(text: str) -> TaskModuleResponse:
    return TaskModuleResponse(task=TaskModuleMessageResponse(value=text))


def _line(message: str, hint: str | None) -> str:
    return MENTION.restyle(f"{message} {hint}" if hint else message)


class TeamsHelp:
    """The welcome card's life and its dialog (see module doc)."""

    def __init__(self, listeners: Listeners) -> None:
        self.ls = listeners
        self.s, self.c = listeners.s, listeners.c
        self.posts = h.HelpPosts(self.c.db)

    # ------------------------------------------------------------ the card

    async def ensure(self, ws: int, tenant: str, channel: str) -> None:
        """After a customer bind (or an install into a bound conversation): the card, updated or posted."""
        info = await self.c.chat.channel(ws, PLATFORM, tenant, channel)
        if info.customer_id is None or await self.c.end_user_requests.mode(ws) == "off":
            return
        ref = await self.s.refs.get(ws, tenant_id=tenant, conversation_id=channel)
        if ref is None:  # never heard from, or the app was removed: posted when it is installed again
            log.info("get-help card not posted: no conversation reference", extra={"channel": channel})
            return
        target, card = Target(ref.conversation_id, ref.service_url), welcome_card(info.customer_name)
        current = await self.posts.current(ws, PLATFORM, tenant, channel)
        if current is not None:
            try:
                await self.s.poster.update(target, current.message_ts, message(h.FALLBACK, card))
            except PostRefused as exc:
                if exc.status != 404:
                    raise
                await self.posts.gone(ws, current.post_id)  # someone deleted it: posted again below
            else:
                if current.customer_id != info.customer_id:
                    await self.posts.moved(ws, current.post_id, info.customer_id)
                return
        posted = await self.s.poster.post(target, message(h.FALLBACK, card))
        if not await self.posts.remember(ws, PLATFORM, tenant, channel, posted, info.customer_id):
            await self.s.poster.delete(target, posted)  # another bind's card came first: keep one

    async def remove(self, ws: int, tenant: str, channel: str) -> None:
        """After the customer is unbound: the card is deleted (or, if Teams refuses, marked) and forgotten."""
        current = await self.posts.current(ws, PLATFORM, tenant, channel)
        if current is None:
            return
        ref = await self.s.refs.get(ws, tenant_id=tenant, conversation_id=channel)
        if ref is not None:
            target = Target(ref.conversation_id, ref.service_url)
            try:
                await self.s.poster.delete(target, current.message_ts)
            except PostRefused as exc:
                if exc.status != 404:
                    await self._mark_closed(target, current.message_ts, exc)
        await self.posts.gone(ws, current.post_id)

    async def _mark_closed(self, target: Target, activity_id: str, refused: PostRefused) -> None:
        log.warning("get-help card not deleted (HTTP %s): marked instead", refused.status)
        try:
            await self.s.poster.update(target, activity_id, message(CLOSED, closed_card()))
        except PostRefused as exc:  # its button still answers "no longer takes help requests"
            log.warning("get-help card neither deleted nor marked (HTTP %s)", exc.status)

    async def on_install(self, ws: int, inc: Incoming) -> None:
        """The app added to a team or a group chat: the card in every bound customer conversation there (a
        team's channels are found from the stored references, marked installed again)."""
        if inc.conversation_type == "channel" and inc.team_id:
            refs = await self.s.refs.team_installed(ws, tenant_id=inc.tenant, team_id=inc.team_id, installed=True)
            channels = {r.channel_id or r.conversation_id for r in refs} | {inc.user.channel_id}
        else:
            channels = {inc.user.channel_id or inc.base_conversation}
        for channel in sorted(c for c in channels if c):
            try:
                await self.ensure(ws, inc.tenant, channel)
            except PostRefused as exc:
                log.error("get-help card not posted on install: %s", exc, extra={"channel": channel})

    # ------------------------------------------------------------ the dialog

    async def open_dialog(self, activity: dict[str, Any]) -> TaskModuleResponse:
        """`task/fetch` from the card's button: the form for the channel customer's people, or why not."""
        inc = incoming(activity)
        try:
            ws = await self.ls.workspace(inc)
            refusal, _ = await self._refusal(ws, inc)
        except DeskbridgeError as exc:
            refusal = _line(exc.message, exc.hint)
        if refusal is not None:
            return _say(refusal)
        return _form(uuid.uuid4().hex)

    async def submit(self, activity: dict[str, Any]) -> TaskModuleResponse:
        """`task/submit`: their request opened (once per form), its card posted after the answer."""
        inc = incoming(activity)
        raw = activity.get("value")
        value: dict[str, Any] = raw if isinstance(raw, dict) else {}
        data: dict[str, Any] = value["data"] if isinstance(value.get("data"), dict) else {}
        text = str(data.get("text") or "").strip()[:h.MAX_CHARS]
        form_id = str(data.get("form") or "")[:64] or uuid.uuid4().hex
        if not text:
            return _form(form_id, error=_line(h.EMPTY, h.EMPTY_HINT))
        try:
            ws = await self.ls.workspace(inc)
            refusal, actor = await self._refusal(ws, inc)
            if refusal is None and actor is not None:
                return await self._open(ws, inc, actor, form_id, text)
        except DeskbridgeError as exc:
            refusal = _line(exc.message, exc.hint)
        quoted = "\n".join(f"> {row}" for row in text.splitlines())
        return _say(f"{refusal}\n\n{WROTE}\n{quoted}")  # nothing was opened: their words come back

    async def _open(self, ws: int, inc: Incoming, actor: Actor, form_id: str, text: str) -> TaskModuleResponse:
        opened = await self.c.end_user_requests.open(
            actor, text, message_key=f"{PLATFORM}:{inc.base_conversation}:help-{form_id}",
            email=await self.ls.email_of(inc), name=inc.user.name, user_key=f"{PLATFORM}:{inc.tenant}:{inc.aad_id}",
            source=None if inc.conversation_type == "channel" else f"{PLATFORM}:{inc.base_conversation}:")
        if opened.again:
            return _say(ALREADY)
        if opened.outcome != "opened" or opened.ticket_id is None:
            return _say(over_limit_text(opened.outcome, opened.number, opened.limit))
        ticket_id = opened.ticket_id
        ref = f"#{opened.number}" if opened.number else "Your ticket"
        line = (OPENED_CHANNEL if inc.conversation_type == "channel" else OPENED_CHAT).format(
            ref=ref, subject=opened.subject)
        if not self.s.work.submit(lambda: self._post_card(ws, inc, actor, ticket_id)):
            line += " Its card could not be posted just now: mention @Deskbridge with `ticket N` to see it."
        return _say(line)

    async def _post_card(self, ws: int, inc: Incoming, actor: Actor, ticket_id: int) -> None:
        view = await self.c.chat_views.ticket(actor, f"id:{ticket_id}", audience="customer")
        try:
            await self.ls.post_ticket(ws, inc, view)  # a new post in the conversation: its chain is the thread
        except PostRefused as exc:
            log.error("Teams post refused: %s", exc)

    async def _refusal(self, ws: int, inc: Incoming) -> tuple[str | None, Actor | None]:
        """Why this person may not ask here (with what to do instead), or None and their actor."""
        info = await self.c.chat.channel(ws, PLATFORM, inc.tenant, inc.user.channel_id)
        if info.customer_id is None:
            return _line(h.NOT_BOUND, h.NOT_BOUND_HINT), None
        actor, info = await self.ls.actor(ws, inc)
        if actor.is_member:
            return _line(h.ONLY_END_USERS, h.ONLY_END_USERS_HINT), None
        if info.customer_id is None or actor.customer_scope_id != info.customer_id:
            return _line(h.NOT_BOUND, h.NOT_BOUND_HINT), None
        if await self.c.end_user_requests.mode(ws) == "off":
            return _line(h.REQUESTS_OFF, h.REQUESTS_OFF_HINT), None
        return None, actor
