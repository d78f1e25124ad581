"""Teams card redraws: one sender per conversation, the clicker's outcome first, one update per card however many
changes asked for it.

A card shows a ticket as it is when the card is built (bot/teams/notifier.py `refresh_cards`), so a redraw asked
for while an earlier one of the same card still waits adds nothing: it joins the waiting one (the newest way to
build it is kept). Teams paces a bot per conversation (bot/teams/poster.py `Pacer`: 8 operations in 2 s), and
before this module every redraw waited in the notifier's one queue: a burst of 200 "Add time" clicks brought 200
deliveries x 5 cards each, and a held click's follow-up ("Saving your time entry…" turned into the outcome,
bot/teams/hold.py) waited behind all of them, and behind any conversation whose pacer was full (p99 6.7-12 s
after the click, session 9). So, the idea of the Slack notifier's lanes (bot/slack/lanes.py) for card updates:

- each conversation (its pacing key: a channel's reply chains share it) has its own sender, so a full pacer in
  one channel never holds a card of another;
- two lanes per conversation: *urgent* (a held click's outcome: someone is looking at "Saving…") before *later*
  (a delivery's or a change's redraw), each in the order first asked;
- a card waiting in *later* that a click's outcome asks for moves to *urgent*: one update carries both the
  outcome and the delivery's state (the merge);
- one update of a conversation at a time: the sender waits for the conversation's pacer, then takes the first
  card and builds it just before it is sent, so whatever is asked while the pacer is full joins or goes ahead,
  and the last update of a card always shows what the newest request saw (a redraw asked while one of the same
  card is being sent is sent after it).
Builds run one at a time (`BUILDERS`: they compete with the clicks' acceptances for the loop and the database).

A refused click's form given back on its card (`show_form`: filled in with what was sent and the reason) is the
technician's work in progress: until someone clicks on that card again (`clicked`), no delivery or change redraw
replaces it (they are skipped, `kept_forms` counts them; the click's own answer, or a resubmission's outcome, then
shows the ticket as it is). Before, a delivery of another write on the same ticket could draw the ticket over the
form, and what the technician had typed was gone from the card.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from microsoft_teams.api.activities.message.message import MessageActivityInput

from bot.teams.poster import PostRefused, Target, TeamsPoster, thread_key
from core.context import Actor
from core.errors import DeskbridgeError
from core.views import TicketView

log = logging.getLogger("deskbridge.teams")

BUILDERS = 1  # card builds at once (as the one notifier worker before): more competed with the clicks' writes on the loop
# (held clicks failing past SQLite's busy_timeout rose with 4, notes/session10-teamsfu.md); sends wait on their own pacer

FORMS_KEPT = 4096  # cards remembered as showing a refused form (the oldest is forgotten first)

Build = Callable[[], Awaitable[MessageActivityInput | None]]  # None: nothing to show there any more


@dataclass
class _Redraw:
    target: Target
    card_id: str
    build: Build
    urgent: bool


@dataclass
class _Conversation:
    urgent: OrderedDict[str, _Redraw] = field(default_factory=OrderedDict)  # card id -> its waiting redraw
    later: OrderedDict[str, _Redraw] = field(default_factory=OrderedDict)
    task: asyncio.Task[None] | None = None

    def __bool__(self) -> bool:
        return bool(self.urgent or self.later)


class CardRedraws:
    """Waiting card redraws per conversation (module docstring). One event loop; not thread-safe."""

    def __init__(self, poster: TeamsPoster, *, builders: int = BUILDERS) -> None:
        self.poster = poster
        self._convs: dict[str, _Conversation] = {}
        self._builders = asyncio.Semaphore(builders)
        self.merged = 0  # redraws that joined a waiting one instead of being sent again
        self.sent = 0
        self._forms: OrderedDict[tuple[str, str], str] = OrderedDict()  # (conversation, card id) -> the refused click
        self.kept_forms = 0  # redraws not sent because the card shows a form in progress

    def waiting(self) -> int:
        return sum(len(c.urgent) + len(c.later) for c in self._convs.values())

    def keep_form(self, target: Target, card_id: str, click_id: str) -> None:
        """The card `card_id` shows a refused form (the answer to the click `click_id`, or `show_form`): no redraw
        replaces it until a click on it (module docstring)."""
        key = (thread_key(target.conversation_id), card_id)
        self._forms[key] = click_id
        self._forms.move_to_end(key)
        while len(self._forms) > FORMS_KEPT:
            self._forms.popitem(last=False)

    def show_form(self, target: Target, card_id: str, click_id: str, build: Build) -> None:
        """Redraw the card with a refused click's form (first in its conversation; a redraw of it still waiting
        joins it), then keep it (`keep_form`)."""
        self.put(target, card_id, build, urgent=True)
        self.keep_form(target, card_id, click_id)

    def clicked(self, conversation_id: str, card_id: str, click_id: str) -> None:
        """Someone clicked on the card `card_id` (not the refused click redelivered): a form it showed is no longer
        in progress (the click's answer replaces it), so redraws reach it again."""
        key = (thread_key(conversation_id), card_id)
        if self._forms.get(key, click_id) != click_id:
            del self._forms[key]

    def put(self, target: Target, card_id: str, build: Build, *, urgent: bool = False) -> bool:
        """Ask for the card `card_id` in `target` to be redrawn with `build`; False when it joined a waiting redraw
        of the same card (one update will carry both), or when the card shows a form in progress (not `urgent`:
        skipped; an urgent redraw, a click's outcome on it, replaces the form)."""
        key = thread_key(target.conversation_id)
        if (key, card_id) in self._forms:
            if not urgent:
                self.kept_forms += 1
                return False
            del self._forms[(key, card_id)]
        conv = self._convs.get(key)
        if conv is None:
            conv = self._convs[key] = _Conversation()
        waiting = conv.urgent.get(card_id) or conv.later.get(card_id)
        if waiting is not None:
            self.merged += 1
            waiting.target, waiting.build = target, build  # the newest request's way to build it
            if urgent and not waiting.urgent:  # a click's outcome: the card goes first, carrying the delivery too
                del conv.later[card_id]
                waiting.urgent = True
                conv.urgent[card_id] = waiting
        else:
            (conv.urgent if urgent else conv.later)[card_id] = _Redraw(target, card_id, build, urgent)
        if conv.task is None:
            conv.task = asyncio.ensure_future(self._send(key, conv))
        return waiting is None

    async def _send(self, key: str, conv: _Conversation) -> None:
        try:
            while conv:
                # wait for the conversation's pacer first, then take the first card: one asked for meanwhile may go
                # first (a click's outcome) or join (a redraw of the same card), and what is sent is built now
                await self.poster.pacer.ready(key)
                if not conv:
                    break
                lane = conv.urgent or conv.later
                _, redraw = lane.popitem(last=False)
                try:
                    async with self._builders:
                        act = await redraw.build()
                    if act is not None:
                        await self.poster.update(redraw.target, redraw.card_id, act)
                        self.sent += 1
                except PostRefused as exc:
                    log.error("Teams card redraw refused: %s", exc)
                except Exception:  # noqa: BLE001 - one card's failure never stops its conversation's redraws
                    log.exception("Teams card redraw failed")
        finally:
            conv.task = None
            if not conv and self._convs.get(key) is conv:
                del self._convs[key]

    async def drain(self) -> None:
        """Wait until no redraw waits or is being sent."""
        while tasks := [c.task for c in self._convs.values() if c.task is not None]:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self, grace_s: float = 10.0) -> None:
        try:
            await asyncio.wait_for(self.drain(), grace_s)
        except TimeoutError:
            log.warning("stopping with %d Teams card redraws unsent", self.waiting())
        for conv in list(self._convs.values()):
            if conv.task is not None:
                conv.task.cancel()
        self._convs.clear()


class TicketViews:
    """A ticket's technicians' view shared by the cards of one redraw round (a ticket's 5 cards in 5 channels: one
    build): reused only while no change to the ticket was announced since its build began (`changed`, called
    before its cards are asked for) and for `TTL_S` at most (an SLA clock moves without an event)."""

    TTL_S = 2.0
    KEPT = 256

    def __init__(self, chat_views: Any) -> None:
        self.chat_views = chat_views
        self._gen: dict[int, int] = {}
        self.tick = 0  # changes announced so far (`changed_since`)
        self._stamps: OrderedDict[int, int] = OrderedDict()  # ticket -> the tick of its last announced change
        self._floor = 0  # the newest tick forgotten from _stamps (a ticket not in it may have changed up to it)
        self._built: OrderedDict[int, tuple[int, float, asyncio.Task[TicketView | None]]] = OrderedDict()
        self.builds = 0

    def changed(self, ticket_id: int) -> None:
        self.tick += 1
        self._stamps[ticket_id] = self.tick
        self._stamps.move_to_end(ticket_id)
        while len(self._stamps) > 4 * self.KEPT:
            self._floor = max(self._floor, self._stamps.popitem(last=False)[1])
        self._gen[ticket_id] = self._gen.get(ticket_id, 0) + 1
        self._built.pop(ticket_id, None)
        if len(self._gen) > 4 * self.KEPT:  # generations only need to differ from a kept build's
            self._gen.clear()
            self._built.clear()

    def changed_since(self, ticket_id: int, tick: int) -> bool:
        """Whether a change to the ticket was announced after `tick` (a value of `tick` read earlier)."""
        return self._stamps.get(ticket_id, self._floor) > tick

    async def get(self, workspace_id: int, ticket_id: int) -> TicketView | None:
        gen, now = self._gen.get(ticket_id, 0), time.monotonic()
        kept = self._built.get(ticket_id)
        if kept is None or kept[0] != gen or now - kept[1] > self.TTL_S or (_failed(kept[2])):
            self.builds += 1
            kept = (gen, now, asyncio.ensure_future(self._build(workspace_id, ticket_id)))
            self._built[ticket_id] = kept
            self._built.move_to_end(ticket_id)
            while len(self._built) > self.KEPT:
                self._built.popitem(last=False)
        return await asyncio.shield(kept[2])

    async def _build(self, workspace_id: int, ticket_id: int) -> TicketView | None:
        try:
            return await self.chat_views.ticket_by_id(Actor.system(workspace_id), ticket_id)
        except DeskbridgeError:
            return None


def _failed(task: asyncio.Task[Any]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)
