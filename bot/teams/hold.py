"""Teams write clicks answered within Teams' invoke limit: the hold budget, and the follow-up.

A write click (an `adaptiveCard/action` invoke that is not a read: bot/teams/app.py `is_read`) is answered in the
invoke's HTTP response, and Teams gives that answer 5 s before it retries and then shows the clicker an error
(chat-platforms.md §3.2). Accepting the write (the click's once-only record, validation, the local write and its
outbox op) takes milliseconds alone, but a burst of clicks queues for the database's one writer (200 at once:
p99 5.7 s, session 8). So the answer waits for the outcome at most `hold_s` (DESKBRIDGE_TEAMS_WRITE_HOLD_SECONDS,
2.2 s); then the clicked card is answered "saving…" (cards.saving_card), and the outcome follows proactively
through the Bot Connector once it is known (Slack's post-ack path does the same with response_url):
- done: the clicked card is redrawn (an update of its message) through the card redraws (bot/teams/redraws.py): in
  its conversation before any delivery redraw, joined with one of the same card still waiting (one update), built
  when sent: the ticket as it is then (a card that is not a ticket's: the answer's own card);
- refused, where failures may be told (a technicians' channel, a chat; core's `failures_visible_in`): the card
  becomes the refused form again, filled in with what was sent and the reason (through the card redraws, first in
  its conversation, and kept there: no delivery redraw draws the ticket over it until someone clicks on the card),
  and a new message @mentioning the clicker says so in the card's reply chain (channel) or chat: a card edit alone
  notifies nobody. A refused form answered within the budget is kept the same way;
- refused where the customer reads: the card goes back to the ticket as it is (no error, nothing claimed; redrawn
  as a done click's card is), and
  the clicker is told in their personal chat with the bot, with what they typed, as a dead write's author is
  (bot/teams/notifier.py). Without a personal chat on record, one is opened through the Bot Connector
  (`POST /v3/conversations` with the clicker: the bot is installed in the team they clicked in) and kept. If
  Teams refuses that too, they are @mentioned in a technicians-only dispatch channel of the customer with the same
  text (as a dead write's author is); only without one is the refusal just logged as an error naming the ticket.
One click stays one write: its activity id is claimed once (ChatService.first_time: a row in the database every
instance shares); a redelivery while the first is held waits on the same acceptance and gets the same answer, and
one follow-up is sent per click. A redelivery that finds the click claimed by another instance (or before this
process remembers it) writes nothing and is answered with the card as it is now.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from microsoft_teams.api import Account
from microsoft_teams.api.clients.conversation.params import CreateConversationParams
from microsoft_teams.api.models.adaptive_card.adaptive_card_action_response import (
    AdaptiveCardActionCardResponse,
)

from bot.teams import cards
from bot.teams.incoming import Incoming, incoming
from bot.teams.poster import PostRefused, Target, message
from core.chat import failures_visible_in
from core.errors import DeskbridgeError, InvalidInput

if TYPE_CHECKING:
    from bot.teams.app import TeamsSurface
    from bot.teams.listeners import Executed

log = logging.getLogger("deskbridge.teams")

RECENT = 1024  # clicks remembered after their outcome (a late redelivery gets the same answer)
WHAT = {"time": "time entry", "reply": "reply", "note": "note", "status": "status change", "new_ticket": "new ticket",
        "assign_me": "assignment", "alert_ack": "alert acknowledgement", "alert_resolve": "alert resolution"}
TYPED = ("text", "notes", "subject", "description")  # form fields whose words are given back with a refusal


@dataclass
class _Held:
    task: asyncio.Task[Executed | None]
    since: int = 0  # changes announced to the card redraws before the acceptance began (TicketViews.tick)
    owed: bool = False  # some answer said "saving": the outcome follows up (once)


def click_data(activity: dict[str, Any]) -> dict[str, Any]:
    action = (activity.get("value") or {}).get("action") or {}
    return action["data"] if isinstance(action.get("data"), dict) else {}


def what_of(data: dict[str, Any]) -> str:
    name = str(data.get("action") or "")
    if name == "reply" and data.get("visibility") == "internal":
        return "note"
    return WHAT.get(name, "change")


class WriteHolds:
    def __init__(self, surface: TeamsSurface, hold_s: float | None) -> None:
        self.s = surface
        self.hold_s = hold_s  # None: wait for the outcome, however long
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def answer(self, key: str, activity: dict[str, Any]) -> Any | None:
        """The invoke answer of a write click: its outcome if known within the budget, else "saving…" (the outcome
        then follows up). None: a click already handled before this process remembers it (answered with nothing,
        as before)."""
        held = self._held.get(key)
        if held is None:
            since = self.s.notifier.views.tick
            held = self._held[key] = _Held(self._spawn(self._accept(key, activity)), since)
            self._trim()
        if not held.task.done() and self.hold_s != 0:
            await asyncio.wait({held.task}, timeout=self.hold_s)  # never cancels the acceptance
        if held.task.done():
            outcome = held.task.result()
            if outcome is None:
                return await self._elsewhere(activity)
            if outcome.refused is not None and outcome.form and activity.get("replyToId"):  # the form is answered:
                self.s.notifier.redraws.keep_form(  # no delivery redraw of the card replaces it (redraws.py)
                    Target(incoming(activity).base_conversation, ""), str(activity["replyToId"]),
                    str(activity.get("id") or ""))
            return outcome.answer
        if not held.owed:
            held.owed = True
            since = held.since
            held.task.add_done_callback(lambda t: self._spawn(self._follow_up(activity, t, since)))
        return AdaptiveCardActionCardResponse.model_validate({"statusCode": 200, "value": cards.saving_card(
            what_of(click_data(activity)), str(click_data(activity).get("ref") or "") or None)})

    async def _elsewhere(self, activity: dict[str, Any]) -> Any | None:
        """A click claimed before, by another instance or before this process remembers it: nothing is written
        again (the claim is a row in the shared database), and the answer is the clicked card as it is now (the
        ticket, with the write if it was accepted); None (an empty answer, as before) when there is none."""
        inc, data = incoming(activity), click_data(activity)
        if not data.get("ref"):
            return None
        try:
            card = await self._restored(await self.s.listeners.workspace(inc), inc, data)
        except DeskbridgeError:
            return None
        return None if card is None else AdaptiveCardActionCardResponse.model_validate({"statusCode": 200,
                                                                                        "value": card})

    async def drain(self) -> None:
        """Wait for every held acceptance and follow-up (tests; shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _trim(self) -> None:
        for key in [k for k, h in self._held.items() if h.task.done()][: max(0, len(self._held) - RECENT)]:
            del self._held[key]

    async def _accept(self, key: str, activity: dict[str, Any]) -> Executed | None:
        if not await self.s.container.chat.first_time("teams-activity", key):
            return None  # Teams redelivered a click handled before: once only
        with self.s.work.acking(), self.s.container.chat.grouped_writes():  # one commit for the clicks queued
            return await self.s.listeners.execute(activity)

    # ------------------------------------------------------------ the follow-up

    async def _follow_up(self, activity: dict[str, Any], task: asyncio.Task[Executed | None], since: int) -> None:
        inc, data = incoming(activity), click_data(activity)
        card_id = str(activity.get("replyToId") or "") or None
        try:
            outcome = task.result()
        except Exception:  # noqa: BLE001 - told to the clicker below, never lost in a task
            log.exception("a held Teams write click failed")
            from bot.teams.listeners import Executed

            outcome = Executed(None, InvalidInput("Deskbridge hit an unexpected error while saving it.",
                                                  hint="Try again; if it happens again, an admin can look at the log."))
        if outcome is None:
            return
        try:
            ws = outcome.ws if outcome.ws is not None else await self.s.listeners.workspace(inc)
            if outcome.refused is None:
                await self._done(ws, inc, data, card_id, outcome, since)
            else:
                await self._refused(ws, inc, data, (card_id, str(activity.get("id") or "")), outcome)
        except PostRefused as exc:
            log.error("Teams follow-up of a held write click refused: %s", exc)
        except Exception:  # noqa: BLE001 - a follow-up logs its failures, never raises into the loop
            log.exception("Teams follow-up of a held write click failed")

    async def _done(self, ws: int, inc: Incoming, data: dict[str, Any], card_id: str | None, outcome: Executed,
                    since: int) -> None:
        answer, views = outcome.answer, self.s.notifier.views
        card = _card_in(answer)
        if card is None:  # a text answer (shown to the clicker only): the card goes back to what it shows
            card = await self._restored(ws, inc, data)
            text = str(getattr(answer, "value", "") or "")
            if text:
                await self._tell(ws, inc, data, text, privately=not await self._failures_told_here(ws, inc),
                                 card_id=card_id)
        if card is None or not card_id:
            return
        target, ticket_card = Target(inc.base_conversation, inc.service_url), _is_ticket_card(card)

        async def build() -> Any:
            # Built when its conversation's sender takes it (bot/teams/redraws.py), ahead of delivery redraws; a
            # delivery redraw of this card still waiting joins it (one update), one sent later comes after it. The
            # acceptance's own card is the ticket as it is while no change to it was announced since the acceptance
            # began (no build; its own delivery is such a change, so the card never goes back to "queued").
            fresh = ticket_card and (outcome.ticket_id is None or views.changed_since(outcome.ticket_id, since))
            shown = (await self._restored(ws, inc, data) if fresh else None) or card
            return message(_fallback(shown), shown)

        self.s.notifier.redraws.put(target, card_id, build, urgent=True)

    async def _refused(self, ws: int, inc: Incoming, data: dict[str, Any], ids: tuple[str | None, str],
                       outcome: Executed) -> None:
        exc = outcome.refused
        assert exc is not None
        (card_id, click_id), target = ids, Target(inc.base_conversation, inc.service_url)
        here = await self._failures_told_here(ws, inc)
        form = _card_in(outcome.answer) if here and outcome.form else None
        if card_id and form is not None:  # the technician's form again, kept until they act on it (redraws.py)

            async def the_form() -> Any:
                assert form is not None
                return message(_fallback(form), form)

            self.s.notifier.redraws.show_form(target, card_id, click_id, the_form)
        elif card_id:  # the ticket as it is when sent, first in its conversation (as a done click's card)

            async def the_ticket() -> Any:
                card = await self._restored(ws, inc, data)
                return None if card is None else message(_fallback(card), card)

            self.s.notifier.redraws.put(target, card_id, the_ticket, urgent=True)
        ref = str(data.get("ref") or "")
        on = f" on #{ref}" if ref.isdigit() else ""
        reason = exc.message + (f" {exc.hint}" if exc.hint else "")
        text = f"Your {what_of(data)}{on} was not saved: {reason}"
        if here and outcome.form:
            text += " The form above has what you sent."
        elif typed := [str(data[k]) for k in TYPED if data.get(k)]:
            text += "\n\nWhat you wrote:\n\n" + "\n\n".join(typed)
        await self._tell(ws, inc, data, text, privately=not here, card_id=card_id)

    async def _failures_told_here(self, ws: int, inc: Incoming) -> bool:
        try:
            _, info = await self.s.listeners.actor(ws, inc)
        except DeskbridgeError:
            return False  # not known here any more: say nothing where others read
        return failures_visible_in(info)

    async def _restored(self, ws: int, inc: Incoming, data: dict[str, Any]) -> dict[str, Any] | None:
        """The card as it is now for this conversation: the ticket's (a new-ticket form: the empty form)."""
        ref = str(data.get("ref") or "")
        restore = {"action": "open", "ref": ref} if ref else {"action": str(data.get("action") or "")}
        try:
            view = await self.s.listeners.card_action(ws, inc, restore)
        except DeskbridgeError:
            return None
        return cards.any_card(view)

    async def _tell(self, ws: int, inc: Incoming, data: dict[str, Any], text: str, *, privately: bool,
                    card_id: str | None = None) -> None:
        """A new message to the clicker (which notifies them): in the card's reply chain or chat @mentioning them;
        `privately`, in their personal chat with the bot (opened through the Bot Connector when there is none)."""
        if privately:
            target = await self._personal(ws, inc)
            if target is None:  # a technicians' dispatch channel of the customer, @mentioning them (as a dead write)
                if not await self._in_dispatch(ws, inc, text):
                    log.error("a held write click's refusal could not be told: the clicker has no personal chat with "
                              "the bot, Teams would not open one, and the customer has no technicians' dispatch "
                              "channel", extra={"ref": str(data.get("ref") or "")[:40]})
                return
            act = message(text)
            act.text_format = "plain"
            await self.s.poster.post(target, act)
            return
        conv = inc.conversation_id  # a channel card's own reply chain: the card is its root, or a reply in it
        if inc.conversation_type == "channel" and not inc.thread_root and card_id:
            conv = f"{inc.base_conversation};messageid={card_id}"
        if inc.conversation_type == "personal":
            act = message(text)
        else:
            name = str(inc.user.name or "you")[:80]
            act = message(f"<at>{name}</at> {text}")
            act.add_mention(Account(id=inc.user_mri, name=name), text=name, add_text=False)
        await self.s.poster.post(Target(conv, inc.service_url), act)

    async def _in_dispatch(self, ws: int, inc: Incoming, text: str) -> bool:
        try:
            _, info = await self.s.listeners.actor(ws, inc)
        except DeskbridgeError:
            return False
        who = Account(id=inc.user_mri, name=str(inc.user.name or "you"))
        return await self.s.notifier.tell_in_dispatch(ws, inc.tenant, info.customer_id, who, text)

    async def _personal(self, ws: int, inc: Incoming) -> Target | None:
        ref = await self.s.refs.personal_for(ws, tenant_id=inc.tenant, user_id=inc.aad_id)
        if ref is not None:
            return Target(ref.conversation_id, ref.service_url)
        params = CreateConversationParams(members=[Account(id=inc.user_mri)], tenant_id=inc.tenant,
                                          channel_data={"tenant": {"id": inc.tenant}})
        try:
            made = await self.s.sdk.api.clone(service_url=inc.service_url).conversations.create(params)
        except Exception:  # noqa: BLE001 - Teams refused the 1:1 chat (app not allowed for them): logged by caller
            log.warning("Teams would not open a personal chat with a technician", exc_info=True)
            return None
        await self.s.refs.remember(ws, tenant_id=inc.tenant, conversation_id=str(made.id), service_url=inc.service_url,
                                   conversation_type="personal", user_id=inc.aad_id)
        return Target(str(made.id), inc.service_url)


def _card_in(answer: Any) -> dict[str, Any] | None:
    if not isinstance(answer, AdaptiveCardActionCardResponse):
        return None
    value = answer.model_dump(mode="json", by_alias=True, exclude_none=True).get("value")
    return value if isinstance(value, dict) else None


def _is_ticket_card(card: dict[str, Any]) -> bool:
    """A ticket's card (cards.ticket_card: its refresh opens the ticket), not a queue, form or other answer."""
    refresh = card.get("refresh")
    action = refresh.get("action") if isinstance(refresh, dict) else None
    data = action.get("data") if isinstance(action, dict) else None
    return isinstance(data, dict) and data.get("action") == "open"


def _fallback(card: dict[str, Any]) -> str:
    """The notification text beside an updated card: its first line."""
    for el in card.get("body") or []:
        if not isinstance(el, dict):
            continue
        text = str(el.get("text") or "") if el.get("type") == "TextBlock" else ""
        if el.get("type") == "RichTextBlock":  # text someone wrote (a subject): cards._plain
            text = "".join(str(r.get("text") or "") if isinstance(r, dict) else str(r) for r in el.get("inlines") or [])
        if text.strip():
            return text[:200]
    return "Deskbridge"
