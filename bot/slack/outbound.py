"""Per-channel delivery queues for chat.postMessage and chat.update (chat-platforms.md §2.4).

(Over 400 lines: pacing, the workspace budget with its two lanes, bounds and lost-post recovery share
the queue state of a channel; split the budget/lanes out if it grows further.)

Slack allows about one message per second per channel. Waiting for that inside whoever posts (a
post-ack worker, the outbox worker, the SLA monitor) would let one busy channel hold up everything
else, e.g. another technician's `views.open` past its 3 s trigger. So posts and updates are only
*submitted* here and return at once; each busy channel gets its own drain task (created when work
arrives, gone when the channel is idle) which spaces the calls and makes them. Other channels are
never held up.

- Order within a channel is kept (a confirmation, then the card update).
- Updates of the same message still waiting collapse into the newest one (only the last state matters).
- Bounded: `max_per_channel` and `max_total` queued items. Beyond either, the oldest queued *update* is
  dropped (a later update or refresh brings the card up to date); a post is never dropped silently:
  if only posts are queued the new post is refused and logged as an error.
- chat.update also spends a per-workspace budget (tier 3, ~50/min): while an update waits for it, later
  updates of the same card still collapse into it.
- Two lanes for updates. *Urgent* ones are cards a technician just acted on (their click's card, the
  "in the PSA" confirmation of their write); the rest are *bulk* refreshes (a change made in the PSA).
  Within a channel an urgent update goes before waiting bulk ones; in a workspace, bulk updates wait
  while any urgent update waits (and, if `urgent_reserve` is set, leave that many tokens to them).
  So when the budget is spent, bulk refreshes are deferred (and keep collapsing per card) while
  someone's own click still shows at once. An urgent update of a card with a bulk one waiting takes its
  place (one update, newest content, urgent). A sleeping channel is woken when urgent work arrives.
  A bulk update deferred `bulk_max_defer` seconds stops yielding: more urgent work than the budget
  (a storm of clicks) must not hide the PSA's changes indefinitely.
- Which bulk update gets the workspace's next token (when there are more than the budget, e.g. a bulk change
  in the PSA over many cards): one waiting longer than `bulk_starve` seconds first (oldest first: none
  starves), then a card someone is watching (clicked in the last `watch_for` seconds, `watch`), then the
  card changed most recently (its newest change first: what was just done in the PSA shows soonest). The
  others yield to it (and wake its channel). Every card still shows its newest state when its turn comes.
- Held updates. The card of a write still on its way to the PSA (the technician's click or reply: the
  thread's confirmation already says "queued") may be held up to `hold` seconds: if the write's outcome
  arrives meanwhile, its urgent update replaces the held one and goes at once, so the action costs one
  chat.update of the workspace's budget instead of two ("queued", then "in the PSA"). A bulk refresh
  arriving meanwhile joins the held update (newest content) without ending the hold.
- Rendered when sent. A post (a new ticket's dispatch card) may carry a `render` too: it is built in its
  channel's drain task when its turn comes, not by whoever queued it.
- Rendered when sent. An update may carry a `render` instead of its content: the card is built when its turn
  comes, from the state of that moment. A burst of PSA changes to one card then costs one render and one
  chat.update per budget slot, not a render per change, and the card never shows an older state than the
  newest one at sending time (a queued eager update keeps the newest *arrival*).
- HTTP 429 + Retry-After is retried by the client's own handler (poster.retry_handlers), inside the
  channel's drain task, so it delays that channel only.
- A post whose answer was lost (the connection dropped after Slack may have accepted it) is never simply
  sent again: every post carries message metadata with its own id, and the channel's recent history is
  searched for that id first; only a post Slack does not have is sent again (once).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError

log = logging.getLogger("deskbridge.slack")

POST_INTERVAL_S = 1.0  # chat.postMessage: ~1 per second per channel
UPDATE_INTERVAL_S = 1.0  # chat.update: at most one per second per channel ...
UPDATES_PER_MINUTE = 50.0  # ... and, per workspace (bot token), Slack's tier 3 (~50/min), with a burst of
UPDATE_BURST = 20  # 20: waiting updates keep coalescing meanwhile, so a busy workspace loses no final state
# Of the burst, tokens kept for urgent updates (bulk ones spend only above them; at most burst/4). Off by
# default: with 5 kept, every PSA change after a saturated minute waited ~6 s more (bench/e2e_latency.py).
URGENT_RESERVE = 0
BULK_MAX_DEFER_S = 5.0  # a bulk update deferred this long competes like an urgent one (the PSA -> chat target)
BULK_STARVE_S = 30.0  # a bulk update waiting this long goes before fresher ones (oldest first)
WATCH_S = 120.0  # a card clicked this recently is being looked at: its bulk refreshes go first
MAX_PER_CHANNEL = 200
MAX_TOTAL = 5000
QUEUE_FULL = "deskbridge_queue_full"  # the error reported for a post refused by the bounds
NOTHING_TO_POST = "deskbridge_nothing_to_post"  # a rendered post with nothing to show when its turn came
POST_EVENT = "deskbridge_post"  # message metadata event type carrying a post's own id
HISTORY_LOOKBACK = 100  # a lost post is looked for among the channel's (or thread's) newest messages


@dataclass(frozen=True, slots=True)
class Posted:
    """What came of a post: its ts, or the Slack error code (e.g. not_in_channel)."""

    ts: str | None
    error: str | None = None


Then = Callable[[Posted], Awaitable[Any]]
# A card's content built when its update is sent: (text, blocks), or None when there is nothing to show any more.
Render = Callable[[], Awaitable[tuple[str, list[dict[str, Any]]] | None]]


@dataclass(slots=True, eq=False)
class _Item:
    kind: str  # "post" | "update"
    seq: int
    client: Any
    channel: str
    args: dict[str, Any]
    future: asyncio.Future[Any]
    then: Then | None = None
    dropped: bool = False
    urgent: bool = False  # an update of a card someone just acted on (see the module docstring)
    queued_at: float = 0.0  # when a bulk update was queued (how long it has been deferred)
    not_before: float = 0.0  # a held update (the card of a write on its way to the PSA) waits until then
    render: Render | None = None  # an update whose content is built when it is sent (the newest state)
    changed_at: float = 0.0  # when its newest content (or render) arrived


@dataclass(slots=True)
class _Channel:
    items: deque[_Item] = field(default_factory=deque)
    updates: dict[str, _Item] = field(default_factory=dict)  # message ts -> its queued update
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # urgent work arrived: stop sleeping


class SlackOutbound:
    """Queues posts and updates per channel; one drain task per busy channel paces and sends them."""

    def __init__(self, *, post_interval: float = POST_INTERVAL_S, update_interval: float = UPDATE_INTERVAL_S,
                 max_per_channel: int = MAX_PER_CHANNEL, max_total: int = MAX_TOTAL,
                 updates_per_minute: float = UPDATES_PER_MINUTE, update_burst: int = UPDATE_BURST,
                 urgent_reserve: int = URGENT_RESERVE, bulk_max_defer: float = BULK_MAX_DEFER_S,
                 bulk_starve: float = BULK_STARVE_S, watch_for: float = WATCH_S,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.intervals = {"post": post_interval, "update": update_interval}
        self.max_per_channel = max_per_channel
        self.max_total = max_total
        self._clock = clock
        self._sleep = sleep
        self._channels: dict[str, _Channel] = {}
        self._next_at: dict[tuple[str, str], float] = {}  # (channel, kind) -> earliest time of the next call
        self._update_rate = updates_per_minute / 60.0
        self._update_burst = float(update_burst)
        self._budgets: dict[str, tuple[float, float]] = {}  # workspace token -> (tokens, when counted)
        self._reserve = float(max(0, min(urgent_reserve, int(update_burst) // 4)))
        self._urgent: dict[str, int] = {}  # workspace token -> urgent updates queued
        self._held: dict[str, set[_Item]] = {}  # workspace token -> urgent updates queued with a hold
        self._max_defer = bulk_max_defer
        self._starve = bulk_starve
        self._watch_for = watch_for
        self._watched: dict[tuple[str, str], float] = {}  # (channel, message ts) -> when someone clicked it
        self._follow_ups: set[asyncio.Task[Any]] = set()
        self._seq = itertools.count()
        self._total = 0
        self.dropped_updates = 0
        self.refused_posts = 0

    @property
    def queued(self) -> int:
        """Items waiting (not yet sent) over all channels."""
        return self._total

    def queued_in(self, channel: str) -> int:
        ch = self._channels.get(channel)
        return len(ch.items) if ch else 0

    # ------------------------------------------------------------ submitting

    def post(self, client: Any, channel: str, *, text: str = "", blocks: list[dict[str, Any]] | None = None,
             thread_ts: str | None = None, then: Then | None = None, render: Render | None = None
             ) -> asyncio.Future[Posted]:
        """Queue a chat.postMessage (never waits). The future gets the outcome; `then`, if given, runs with
        it in a task of its own (not in the channel's drain task, not in the caller). `render` instead of text
        and blocks: the message is built when its turn comes (None then: nothing is posted, the outcome is
        Posted(None, NOTHING_TO_POST))."""
        if render is None and blocks is None:
            raise ValueError("a post needs its blocks or a render")
        args = {"text": text[:3000], "blocks": blocks or [], "thread_ts": thread_ts,
                "metadata": {"event_type": POST_EVENT, "event_payload": {"post_id": uuid.uuid4().hex}}}
        item = _Item("post", next(self._seq), client, channel, args,
                     asyncio.get_running_loop().create_future(), then, render=render)
        if not self._make_room(channel, item):
            self.refused_posts += 1
            log.error("Slack post refused: the delivery queue is full",
                      extra={"channel": channel, "queued": self._total})
            self._finish(item, Posted(None, QUEUE_FULL))
            return item.future
        self._enqueue(item)
        return item.future

    def update(self, client: Any, channel: str, ts: str, *, text: str = "", blocks: list[dict[str, Any]] | None = None,
               urgent: bool = False, hold: float = 0.0, render: Render | None = None) -> asyncio.Future[bool]:
        """Queue a chat.update (never waits); a queued update of the same message is replaced by this one.
        `urgent`: a card someone just acted on, sent before bulk refreshes (module docstring). `hold`: wait up
        to this long for a newer state of the card (module docstring: held updates). `render` (instead of
        text and blocks): the content is built when the update is sent, so however many refreshes of the card
        collapse while it waits for Slack's budget, it is built once, from the state of that moment."""
        if render is None and blocks is None:
            raise ValueError("an update needs its blocks or a render")
        args = {"ts": ts, "text": text[:3000], "blocks": blocks or []}
        now = self._clock()
        ch = self._channels.get(channel)
        waiting = ch.updates.get(ts) if ch else None
        if waiting is not None and ch is not None:  # coalesce: keep the queue position, send the newest content
            waiting.args = args
            waiting.render = render
            waiting.client = client
            waiting.changed_at = now
            if hold > 0:
                waiting.not_before = max(waiting.not_before, now + hold)
            elif urgent and waiting.not_before > now:  # the state the hold waited for: send it now
                waiting.not_before = 0.0
                ch.wake.set()
            if urgent and not waiting.urgent:
                waiting.urgent = True
                self._count_urgent(waiting, 1)
                ch.wake.set()
            self._note_held(waiting)
            return waiting.future
        item = _Item("update", next(self._seq), client, channel, args, asyncio.get_running_loop().create_future(),
                     urgent=urgent, queued_at=now, not_before=now + hold if hold > 0 else 0.0, render=render,
                     changed_at=now)
        if not self._make_room(channel, item):
            self.dropped_updates += 1
            log.warning("Slack card update dropped: the delivery queue is full", extra={"channel": channel})
            item.future.set_result(False)
            return item.future
        self._enqueue(item)
        self._note_held(item)
        return item.future

    def watch(self, channel: str, ts: str) -> None:
        """Someone clicked this card: while they look at it, its bulk refreshes go before others'."""
        now = self._clock()
        self._watched[(channel, ts)] = now
        if len(self._watched) > 5000:
            self._watched = {k: v for k, v in self._watched.items() if now - v <= self._watch_for}

    def watched(self, channel: str, ts: str) -> bool:
        return self._clock() - self._watched.get((channel, ts), float("-inf")) <= self._watch_for

    def _rank(self, item: _Item, now: float) -> tuple[float, ...]:
        """Order of bulk updates for the next token (smaller first; module docstring)."""
        waited = now - item.queued_at
        if waited >= self._starve:
            return (0.0, item.queued_at)
        return (1.0, 0.0 if self.watched(item.channel, item.args["ts"]) else 1.0, -item.changed_at, item.seq)

    def _best_bulk(self, key: str, now: float, aged_only: bool) -> _Item | None:
        """The bulk update of this workspace that should take the next token (free now, its channel due)."""
        best: _Item | None = None
        best_rank: tuple[float, ...] = ()
        for channel, ch in self._channels.items():
            if self._next_at.get((channel, "update"), float("-inf")) > now:
                continue
            for i in ch.updates.values():
                if i.urgent or i.not_before > now or self._key(i.client) != key:
                    continue
                if aged_only and now - i.queued_at < self._max_defer:
                    continue
                rank = self._rank(i, now)
                if best is None or rank < best_rank:
                    best, best_rank = i, rank
        return best

    def _note_held(self, item: _Item) -> None:
        """Held urgent updates are not yet waiting for the budget: bulk updates need not yield to them."""
        held = self._held.setdefault(self._key(item.client), set())
        if item.urgent and item.not_before > self._clock():
            held.add(item)
        else:
            held.discard(item)

    def _enqueue(self, item: _Item) -> None:
        ch = self._channels.setdefault(item.channel, _Channel())
        ch.items.append(item)
        if item.kind == "update":
            ch.updates[item.args["ts"]] = item
            if item.urgent:
                self._count_urgent(item, 1)
                ch.wake.set()
        self._total += 1
        if ch.task is None:
            ch.task = asyncio.get_running_loop().create_task(self._drain_channel(item.channel, ch),
                                                             name=f"slack-outbound-{item.channel}")

    def _make_room(self, channel: str, item: _Item) -> bool:
        """Drop the oldest queued update (this channel's first, then anyone's) until `item` fits."""
        ch = self._channels.get(channel)
        if ch is not None and len(ch.items) >= self.max_per_channel and not self._drop_update(ch):
            return False
        while self._total >= self.max_total:
            oldest = min((c for c in self._channels.values() if c.updates),
                         key=lambda c: min(u.seq for u in c.updates.values()), default=None)
            if oldest is None or not self._drop_update(oldest):
                return False
        return True

    def _drop_update(self, ch: _Channel) -> bool:
        victim = next((i for i in ch.items if i.kind == "update" and not i.urgent), None) \
            or next((i for i in ch.items if i.kind == "update"), None)
        if victim is None:
            return False
        ch.items.remove(victim)
        ch.updates.pop(victim.args["ts"], None)
        self._total -= 1
        self._held.get(self._key(victim.client), set()).discard(victim)
        if victim.urgent:
            self._count_urgent(victim, -1)
        self.dropped_updates += 1
        log.warning("Slack card update dropped to make room (the queue is full)", extra={"channel": victim.channel})
        victim.dropped = True
        if not victim.future.done():
            victim.future.set_result(False)
        return True

    # ------------------------------------------------------------ sending

    async def _drain_channel(self, channel: str, ch: _Channel) -> None:
        try:
            while ch.items:
                item, wait = self._pick(channel, ch)
                if item is None:
                    await self._nap(ch, wait)
                    continue  # items may have been dropped, coalesced or added meanwhile: look again
                ch.items.remove(item)
                self._total -= 1
                if item.kind == "update":
                    ch.updates.pop(item.args["ts"], None)
                    self._take_update(item)
                self._next_at[(channel, item.kind)] = self._clock() + self.intervals[item.kind]
                await self._send(item)
        finally:
            ch.task = None
            if not ch.items and self._channels.get(channel) is ch:
                del self._channels[channel]  # idle: the task ends; its pacing is kept in _next_at
            if len(self._next_at) > 5000:  # forget channels whose spacing has passed
                now = self._clock()
                self._next_at = {k: v for k, v in self._next_at.items() if v > now}

    def _pick(self, channel: str, ch: _Channel) -> tuple[_Item | None, float]:
        """The item to send now, or None and how long to wait: the oldest post and the oldest update (an
        urgent one before any bulk one), whichever is due (channel pacing; for an update, the budget),
        the older first when both are."""
        now = self._clock()
        post = next((i for i in ch.items if i.kind == "post"), None)
        free = [i for i in ch.items if i.kind == "update" and i.not_before <= now]
        update = next((i for i in free if i.urgent), None) or min(free, key=lambda i: self._rank(i, now), default=None)
        held = [i.not_before - now for i in ch.items if i.kind == "update" and i.not_before > now]
        ready: list[_Item] = []
        wait = min(held, default=float("inf"))
        for item in (post, update):
            if item is None:
                continue
            due = self._next_at.get((channel, item.kind), float("-inf")) - now
            if item.kind == "update":
                due = max(due, self._update_wait(item))
            if due <= 0:
                ready.append(item)
            wait = min(wait, due)
        return (min(ready, key=lambda i: i.seq), 0.0) if ready else (None, wait)

    async def _nap(self, ch: _Channel, seconds: float) -> None:
        """Sleep up to `seconds`; urgent work arriving in this channel ends it early."""
        ch.wake.clear()
        nap = asyncio.ensure_future(self._sleep(seconds))
        woken = asyncio.ensure_future(ch.wake.wait())
        try:
            await asyncio.wait({nap, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (nap, woken):
                t.cancel()
            await asyncio.gather(nap, woken, return_exceptions=True)

    @staticmethod
    def _key(client: Any) -> str:
        return str(getattr(client, "token", None) or id(client))

    def _count_urgent(self, item: _Item, delta: int) -> None:
        key = self._key(item.client)
        left = self._urgent.get(key, 0) + delta
        if left > 0:
            self._urgent[key] = left
        else:
            self._urgent.pop(key, None)

    def _tokens(self, key: str) -> float:
        now = self._clock()
        tokens, at = self._budgets.get(key, (self._update_burst, now))
        tokens = min(self._update_burst, tokens + (now - at) * self._update_rate)
        self._budgets[key] = (tokens, now)
        return tokens

    def _update_wait(self, item: _Item) -> float:
        """Seconds until the workspace's budget lets this update go (0: now); nothing is taken."""
        key = self._key(item.client)
        tokens = self._tokens(key)
        if item.urgent:
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self._update_rate
        now = self._clock()
        held = sum(1 for i in self._held.get(key, ()) if i.not_before > now)
        urgent_waits = self._urgent.get(key, 0) > held
        if now - item.queued_at >= self._max_defer:
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self._update_rate
        elif urgent_waits:  # someone's own card waits in this workspace: it goes first
            return max(1.0 - tokens, 0.0) / self._update_rate + 1.0 / self._update_rate
        else:
            floor = 1.0 + self._reserve
            wait = 0.0 if tokens >= floor else (floor - tokens) / self._update_rate
        if wait > 0:
            return wait
        best = self._best_bulk(key, now, aged_only=urgent_waits)
        if best is None or best is item:
            return 0.0
        other = self._channels.get(best.channel)
        if other is not None:
            other.wake.set()  # its channel may be napping: the token is its
        return 1.0 / self._update_rate

    def _take_update(self, item: _Item) -> None:
        key = self._key(item.client)
        tokens, at = self._budgets[key]
        self._budgets[key] = (tokens - 1.0, at)
        self._held.get(key, set()).discard(item)
        if item.urgent:
            self._count_urgent(item, -1)

    async def _send(self, item: _Item) -> None:
        try:
            if item.kind == "post":
                if item.render is not None:
                    content = await item.render()
                    if content is None:
                        self._finish(item, Posted(None, NOTHING_TO_POST))
                        return
                    item.args.update(text=content[0][:3000], blocks=content[1])
                    item.render = None
                self._finish(item, await self._post(item))
            else:
                if item.render is not None:
                    content = await item.render()
                    if content is None:  # nothing to show any more (e.g. the ticket left this channel)
                        self._refund(item)
                        self._finish(item, False)
                        return
                    item.args = {"ts": item.args["ts"], "text": content[0][:3000], "blocks": content[1]}
                await item.client.chat_update(channel=item.channel, **item.args)
                self._finish(item, True)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "error")
            log.warning("chat.%s failed", "postMessage" if item.kind == "post" else "update",
                        extra={"channel": item.channel, "error": error})
            self._finish(item, Posted(None, error) if item.kind == "post" else False)
        except Exception:  # noqa: BLE001 - network trouble after the retries: logged, the channel goes on
            log.exception("Slack delivery failed", extra={"channel": item.channel, "kind": item.kind})
            self._finish(item, Posted(None, "delivery_failed") if item.kind == "post" else False)

    def _refund(self, item: _Item) -> None:
        """An update not sent after all gives its token back to the workspace's budget."""
        key = self._key(item.client)
        if key in self._budgets:
            tokens, at = self._budgets[key]
            self._budgets[key] = (min(self._update_burst, tokens + 1.0), at)

    async def _post(self, item: _Item) -> Posted:
        """chat.postMessage; if the answer is lost, find the post in the channel before sending it again."""
        for attempt in (1, 2):
            try:
                resp = await item.client.chat_postMessage(channel=item.channel, unfurl_links=False,
                                                          unfurl_media=False, **item.args)
                return Posted(str(resp["ts"]) if resp.get("ts") else None, None if resp.get("ts") else "no_ts")
            except SlackApiError:
                raise
            except Exception:
                if attempt == 2:
                    raise
                log.warning("Slack post answer lost; looking for it in the channel", extra={"channel": item.channel})
                found = await self._find_post(item)
                if found is not None:
                    return Posted(found)
        raise AssertionError("unreachable")

    @staticmethod
    async def _find_post(item: _Item) -> str | None:
        """The ts of the message carrying this post's id, if Slack has it (thread replies are in the thread;
        a channel's posts are paced one at a time, so the lost one is among the newest)."""
        post_id = item.args["metadata"]["event_payload"]["post_id"]
        thread = item.args.get("thread_ts")
        try:
            if thread:
                resp = await item.client.conversations_replies(channel=item.channel, ts=thread, include_all_metadata=True,
                                                               limit=HISTORY_LOOKBACK)
            else:
                resp = await item.client.conversations_history(channel=item.channel, include_all_metadata=True,
                                                               limit=HISTORY_LOOKBACK)
        except Exception:  # noqa: BLE001 - cannot look: the post is sent again (a duplicate beats a loss)
            log.warning("could not look for a lost Slack post", extra={"channel": item.channel})
            return None
        for message in resp.get("messages") or []:
            meta = message.get("metadata") or {}
            if meta.get("event_type") == POST_EVENT and (meta.get("event_payload") or {}).get("post_id") == post_id:
                return str(message.get("ts"))
        return None

    def _finish(self, item: _Item, result: Any) -> None:
        if not item.future.done():
            item.future.set_result(result)
        if item.then is not None:
            task = asyncio.get_running_loop().create_task(self._follow_up(item.then, result))
            self._follow_ups.add(task)
            task.add_done_callback(self._follow_ups.discard)

    @staticmethod
    async def _follow_up(then: Then, result: Posted) -> None:
        try:
            await then(result)
        except Exception:  # noqa: BLE001 - e.g. recording the thread failed: logged, nothing else stops
            log.exception("work after a Slack post failed")

    # ------------------------------------------------------------ lifecycle

    @property
    def idle(self) -> bool:
        return not self._channels and not self._follow_ups

    async def drain(self) -> None:
        """Wait until every queued post and update is sent and their follow-ups have run."""
        while not self.idle:
            tasks = [c.task for c in self._channels.values() if c.task is not None] + list(self._follow_ups)
            if not tasks:  # queued items with no task cannot happen; do not spin if it ever does
                break
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self, grace_s: float = 10.0) -> None:
        """Send what is queued (up to `grace_s`), then stop; anything left is logged, never silently lost."""
        try:
            await asyncio.wait_for(self.drain(), grace_s)
        except TimeoutError:
            posts = sum(1 for c in self._channels.values() for i in c.items if i.kind == "post")
            log.error("stopping with %d Slack posts and %d updates unsent", posts, self._total - posts)
        tasks = [c.task for c in self._channels.values() if c.task is not None] + list(self._follow_ups)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._channels.clear()
        self._total = 0
