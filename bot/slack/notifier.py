"""SlackNotifier: domain events from sync, the outbox and the SLA monitor, delivered into Slack.

(Over 400 lines: one handler per event kind; App Home refreshes are paced in bot/slack/home.py.)

- NoteAdded (from the PSA via sync, or written here: chat, console, API) -> a post in every thread of the
  ticket except the one it was written in (`source`: no echo); channels the customer reads only get public
  notes. The bot's own posts are never read back as messages (no loops).
- TicketChanged (not from Slack), WriteDelivered -> the ticket's cards are re-rendered (chat.update),
  so "queued" turns into delivered.
- TicketCreated, and WriteDelivered of a ticket created here (chat, API) -> the ticket's card in every
  channel bound `dispatch` that may see it (core decides: ChatService.dispatch_channels); the post
  becomes the ticket's thread there.
- Changes of who owns a ticket, or of what its queue row shows -> the App Home of the technicians
  concerned who have it open is re-published (ChatService.app_home_targets; bot/slack/home.py: coalesced
  per user, paced within Slack's tier 4 per team).
- WriteDead -> the thread says the write failed and how an admin can redrive it (where the customer reads
  the thread, only the write's author is told, privately).
- SlaWarningEvent -> the channels bound to SLA alerts, and tech channels bound to that customer.
- AlertNeedsTicket -> the alert with a customer picker and "Create ticket" in the technicians' channels core
  names (core/intake/offers.py; bot/slack/listeners/alerts.py takes the click).

`notify` only queues the event and returns: the outbox worker and the SLA monitor call it inline and
must never wait for Slack. A small pool of our own (not the post-ack one) does the database and view
work; events of one ticket always go to the same worker. Each worker has two lanes (bot/slack/lanes.py):
notes, new tickets and write outcomes first, in order; card refreshes of PSA changes after them, one per
ticket however many changes arrived meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.slack import alert_blocks as ab
from bot.slack import blocks as bk
from bot.slack import text as t
from bot.slack.channels import SharedChannels
from bot.slack.confirm import Confirmations, react
from bot.slack.home import HOME_INTERVAL_S, HomeRefresher
from bot.slack.lanes import CHANGE_BATCH, Lanes
from bot.slack.outbound import Posted, Render
from bot.slack.poster import SlackPoster, make_client
from core.chat import (
    ChannelInfo,
    ChatCommands,
    ChatService,
    ChatViews,
    PostRecord,
    ThreadPost,
    card_audience,
    customer_author,
    failures_visible_in,
    grammar,
    may_post_ticket,
    note_visible_in,
)
from core.context import Actor
from core.errors import DeskbridgeError
from core.intake.offers import AlertOffers
from core.notify import (
    AlertNeedsTicket,
    DomainEvent,
    NoteAdded,
    RiskAlertEvent,
    SlaWarningEvent,
    TicketChanged,
    TicketCreated,
    WriteDead,
    WriteDelivered,
)
from core.views import SlaWarningView

log = logging.getLogger("deskbridge.slack")
PLATFORM = "slack"
NOT_MIRRORED = frozenset({"slack"})
WRITES_FIRST_MAX_S = 0.3  # the longest a write's confirmation waits for the burst's other writes (target: 1 s)
WORKERS = 2  # events of one ticket go to one worker (in order); Slack calls themselves are queued per channel
MAX_BACKLOG = 5000  # events waiting per worker; beyond it an event is dropped and logged as an error


class SlackNotifier:
    """Implements core.notify.Notifier for Slack."""

    def __init__(self, *, chat: ChatService, views: ChatViews, poster: SlackPoster, api_url: str,
                 commands: ChatCommands | None = None, workers: int = WORKERS, max_backlog: int = MAX_BACKLOG,
                 home_interval: float = HOME_INTERVAL_S, shared: SharedChannels | None = None,
                 offers: AlertOffers | None = None, confirmations: Confirmations | None = None,
                 respond: Callable[..., Awaitable[bool]] | None = None) -> None:
        self.chat = chat
        # A technician's own write confirmed without chat.update (bot/slack/confirm.py): the clicked card through
        # its response_url (`respond`: SlackContext.respond_to), a thread message by a reaction.
        self.confirmations = confirmations or Confirmations()
        self.respond = respond
        # Before a clicked card is built to confirm its write: wait (bounded) for the post-ack jobs, so the
        # rest of a burst's writes commit first (SlackContext.work.settled; None: no wait)
        self.writes_first: Callable[[float], Awaitable[None]] | None = None
        self.offers = offers  # alerts that made no ticket, offered to technicians (core/intake/offers.py)
        self.shared = shared or SharedChannels()
        self.views = views
        self.poster = poster
        self.api_url = api_url
        self.commands = commands
        self.workers = workers
        self.max_backlog = max_backlog
        # who has their Home open is shared by every instance through the store (core/chat/home_views.py)
        self.homes = HomeRefresher(self._publish_home, interval=home_interval,
                                   shared=getattr(chat, "home_views", None))
        self._lanes: list[Lanes] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._settled = asyncio.Event()  # set while no event waits or is being handled
        self._settled.set()
        self._dispatched: set[tuple[int, str]] = set()  # (ticket, channel) cards queued, not yet recorded
        self.dropped = 0
        self._in_flight = 0
        self.session: Any = None  # the surface's shared aiohttp session, once started (SlackSurface.start)

    # ------------------------------------------------------------ queueing

    async def notify(self, event: DomainEvent) -> None:
        """Queue the event for delivery and return at once (never waits for Slack)."""
        if not self._lanes:
            self._lanes = [Lanes() for _ in range(self.workers)]
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._worker(lanes), name=f"slack-notify-{i}")
                           for i, lanes in enumerate(self._lanes)]
        lanes = self._lanes[(event.ticket_id or 0) % len(self._lanes)]
        if len(lanes) >= self.max_backlog:
            self.dropped += 1
            log.error("Slack delivery backlog full: %s for ticket %s not delivered to Slack",
                      type(event).__name__, event.ticket_number)
            return
        if lanes.put(event):
            self._in_flight += 1
            self._settled.clear()

    def room(self) -> int:
        """Events any lane can still take before its backlog is full (core.notify.room)."""
        return self.max_backlog - max((len(lanes) for lanes in self._lanes), default=0)

    async def _worker(self, lanes: Lanes) -> None:
        while True:
            event = await lanes.get()
            more = lanes.more_changes(CHANGE_BATCH - 1) if isinstance(event, TicketChanged) else []
            try:
                if more and isinstance(event, TicketChanged):
                    await self.deliver_changes([event, *more])
                else:
                    await self.deliver(event)
            finally:
                self._in_flight -= 1 + len(more)
                if self._in_flight == 0:
                    self._settled.set()

    @property
    def merged(self) -> int:
        """Ticket changes that joined a change of the same ticket still waiting (handled once)."""
        return sum(lanes.merged for lanes in self._lanes)

    @property
    def idle(self) -> bool:
        """No event waiting or being handled, and no App Home publish due."""
        return self._in_flight == 0 and self.homes.idle

    async def drain(self) -> None:
        """Wait until every queued event is handled and the App Home publishes it asked for are done."""
        while self._in_flight:
            await self._settled.wait()
        await self.homes.drain()

    async def close(self, grace_s: float = 10.0) -> None:
        """Handle queued events (up to `grace_s`), then stop the workers."""
        try:
            await asyncio.wait_for(self.drain(), grace_s)
        except TimeoutError:
            log.error("stopping with %d Slack events undelivered", sum(len(lanes) for lanes in self._lanes))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.homes.close()
        self._tasks, self._lanes = [], []
        self._in_flight = 0
        self._settled.set()

    # ------------------------------------------------------------ delivery

    async def deliver(self, event: DomainEvent) -> None:
        """Deliver one event now (the workers call this); failures are logged, never raised."""
        try:
            if isinstance(event, NoteAdded):
                await self._note(event)
            elif isinstance(event, WriteDead):
                await self._dead(event)
            elif isinstance(event, TicketCreated):
                await self._dispatch(event.workspace_id, event.ticket_id)
                await self._homes(event.workspace_id, event.ticket_id, created=True)
            elif isinstance(event, WriteDelivered):  # someone's write is "in the PSA": show it first
                # A thread message's write: its ✅ says so at once; the card then catches up as a bulk refresh.
                reacted = await self._react(self.confirmations.outcome(event.entry_id, delivered=True))
                await self.refresh_cards(event.workspace_id, event.ticket_id, urgent=not reacted, outcome=True)
                if event.kind == "create_ticket":  # created in chat or the API: no TicketCreated is emitted
                    await self._dispatch(event.workspace_id, event.ticket_id)
                await self._homes(event.workspace_id, event.ticket_id, op_id=event.op_id)
            elif isinstance(event, TicketChanged):
                if event.origin not in NOT_MIRRORED:  # a change made in Slack has updated its card already
                    await self.refresh_cards(event.workspace_id, event.ticket_id)
                await self._homes(event.workspace_id, event.ticket_id, changes=event.changes)
            elif isinstance(event, SlaWarningEvent):
                await self._sla(event)
            elif isinstance(event, AlertNeedsTicket):
                await self._alert_offer(event)
            elif isinstance(event, RiskAlertEvent):
                await self._risk(event)
        except Exception:  # noqa: BLE001 - a notifier logs delivery failures, never raises
            log.exception("slack notify failed", extra={"event": type(event).__name__})

    async def deliver_changes(self, events: list[TicketChanged]) -> None:
        """Several tickets' changes (a burst waiting in a lane): their threads read in one query per workspace,
        then each as `deliver` would; a failure is logged and the others go on."""
        threads: dict[int, dict[int, list[ThreadPost]]] = {}
        homes: dict[int, dict[int, list[tuple[str, str]]]] = {}
        for ws in {e.workspace_id for e in events}:
            mine = [e for e in events if e.workspace_id == ws and e.ticket_id is not None]
            try:
                threads[ws] = await self.chat.posts_for_tickets(
                    ws, [e.ticket_id for e in mine if e.ticket_id is not None and e.origin not in NOT_MIRRORED],
                    PLATFORM)
                if self.commands is not None:
                    await self.homes.fresh()
                if self.commands is not None and self.homes.any_open():
                    homes[ws] = await self.chat.app_home_targets_of_changes(
                        ws, PLATFORM, [(e.ticket_id, e.changes) for e in mine if e.ticket_id is not None])
            except Exception:  # noqa: BLE001 - each change reads its own then
                log.exception("slack notify: reading the threads of a burst of changes failed")
        for event in events:
            known, targets = threads.get(event.workspace_id), homes.get(event.workspace_id)
            try:
                if event.origin not in NOT_MIRRORED:
                    await self.refresh_cards(event.workspace_id, event.ticket_id, posts=None if known is None else
                                             known.get(event.ticket_id or 0, []))
                if targets is None:
                    await self._homes(event.workspace_id, event.ticket_id, changes=event.changes)
                else:
                    for team_id, user_id in targets.get(event.ticket_id or 0, []):
                        self.homes.request(event.workspace_id, team_id, user_id)
            except Exception:  # noqa: BLE001 - a notifier logs delivery failures, never raises
                log.exception("slack notify failed", extra={"event": "TicketChanged"})

    async def _client(self, team_id: str, workspace_id: int | None = None) -> Any | None:
        inst = await self.chat.installation(PLATFORM, team_id)
        if inst is None or not inst.bot_token:
            return None
        if workspace_id is not None and inst.workspace_id != workspace_id:
            return None  # a team of another workspace never gets this workspace's tickets
        return make_client(self.api_url, inst.bot_token, self.session)

    async def _threads(self, event: DomainEvent) -> list[ThreadPost]:
        if event.ticket_id is None:
            return []
        return await self.chat.posts_for_ticket(event.workspace_id, event.ticket_id, PLATFORM)

    async def _note(self, event: NoteAdded) -> None:
        posts = await self._threads(event)
        for post in posts:
            if event.source == f"{PLATFORM}:{post.channel_id}:{post.thread_ts}":
                continue  # written in this very thread: no echo
            client = await self._client(post.team_id)
            if client is None:
                continue
            info = await self._seen(client, event.workspace_id, post.team_id, post.channel_id)
            if not may_post_ticket(info, post.customer_id) or not note_visible_in(info, event.visibility):
                continue
            who = customer_author(event.author_name) if card_audience(info) == "customer" else event.author_name
            body = bk.psa_note_blocks(who, event.visibility, event.body,
                                      prefix=t.THREAD_PSA_PREFIX if event.origin == "psa" else t.THREAD_CHAT_PREFIX)
            await self.poster.post(client, post.channel_id, text=bk.esc(f"{who or 'PSA'}: {event.body[:200]}"),
                                   blocks=body, thread_ts=post.thread_ts,
                                   record=self._record(event.workspace_id, post, "note",
                                                       "customer" if event.visibility == "public" else "tech"))
        await self.refresh_cards(event.workspace_id, event.ticket_id, posts=posts)

    async def _dead(self, event: WriteDead) -> None:
        what = t.OP_NAMES.get(event.kind, event.kind)
        template = (t.TENANT_ACTION_DEAD if event.kind == "tenant_action"
                    else t.WRITE_DEAD_CAUSE.get(event.cause, t.WRITE_DEAD))
        msg = template.format(what=what, error=bk.esc(event.error[:300]), op_id=event.op_id,
                              connection=bk.esc(event.connection or "<connection>"))
        authors: dict[str, str | None] = {}  # per team, looked up when a customer-read thread needs it
        for post in await self._threads(event):
            client = await self._client(post.team_id)
            if client is None:
                continue
            info = await self._seen(client, event.workspace_id, post.team_id, post.channel_id)
            if not may_post_ticket(info, post.customer_id):
                continue
            if not failures_visible_in(info):
                # The PSA's error is the MSP's business, not the customer's: the author alone is told, there.
                if post.team_id not in authors:
                    authors[post.team_id] = await self.chat.write_author(event.workspace_id, event.op_id,
                                                                         PLATFORM, post.team_id)
                author = authors[post.team_id]
                if author:
                    try:
                        await client.chat_postEphemeral(channel=post.channel_id, user=author,
                                                        thread_ts=post.thread_ts, text=msg)
                    except Exception as exc:  # noqa: BLE001 - the other threads and the card refresh go on
                        error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
                        log.warning("could not tell the author of a dead write",
                                    extra={"channel": post.channel_id, "error": error})
                continue
            await self.poster.post(client, post.channel_id, text=msg, blocks=[
                {"type": "section", "text": {"type": "mrkdwn", "text": msg}}], thread_ts=post.thread_ts,
                record=self._record(event.workspace_id, post, "dead", "tech"))
        self.confirmations.outcome(event.entry_id, delivered=False)  # never a ✅ for a refused write
        await self.refresh_cards(event.workspace_id, event.ticket_id, urgent=True, outcome=True)

    @staticmethod
    def _record(workspace_id: int, post: ThreadPost, kind: str, audience: str) -> PostRecord:
        return PostRecord(workspace_id=workspace_id, platform=PLATFORM, team_id=post.team_id,
                          channel_id=post.channel_id, kind=kind, audience=audience,
                          customer_id=post.customer_id, thread_ts=post.thread_ts)

    async def _seen(self, client: Any, workspace_id: int, team_id: str, channel_id: str) -> ChannelInfo:
        return await self.shared.seen(self.chat, client, workspace_id, team_id, channel_id)

    async def refresh_cards(self, workspace_id: int, ticket_id: int | None, *, urgent: bool = False,
                            outcome: bool = False, posts: list[ThreadPost] | None = None) -> int:
        """Re-render every card of a ticket (pending/delivered/dead state, new notes, status); returns how
        many updates were queued (they are paced and coalesced per channel). `urgent`: the outcome of
        someone's own write (before bulk refreshes of PSA changes when Slack's budget is short). `outcome`:
        a write's outcome: a card clicked lately is replaced through the click's response_url instead
        (bot/slack/confirm.py), at once and outside chat.update's budget. `posts`: the ticket's threads, when
        the caller has just read them.

        One read here: the ticket's threads, each with the ticket's customer (whether a channel may show it);
        each card is built when its update is sent (bot/slack/outbound.py `render`), from the state of that
        moment, and checks again then: refreshes of a card waiting for Slack's budget collapse into one build."""
        if ticket_id is None:
            return 0
        if posts is None:
            posts = await self.chat.posts_for_ticket(workspace_id, ticket_id, PLATFORM)
        if not posts:
            return 0
        actor = Actor.system(workspace_id)
        done = 0
        for post in posts:
            client = await self._client(post.team_id)
            if client is None:
                continue
            info = await self._seen(client, workspace_id, post.team_id, post.channel_id)
            if not may_post_ticket(info, post.customer_id):
                continue  # an old thread in a channel since bound to another customer: nothing of it, ever
            render = self._card(actor, ticket_id, info)
            if outcome and await self._replace_clicked(post.channel_id, post.card_ts, render):
                done += 1
                continue
            await self.poster.update(client, post.channel_id, post.card_ts, urgent=urgent, render=render)
            done += 1
        return done

    async def _replace_clicked(self, channel: str, card_ts: str, render: Render) -> bool:
        """The card a technician clicked, replaced through the click's response_url; False: not possible."""
        if self.respond is None:
            return False
        return bool(await self.confirmations.replace(channel, card_ts, self._sender(render), outcome=True))

    def _sender(self, render: Render) -> Callable[[str], Awaitable[bool]]:
        respond = self.respond

        async def send(url: str) -> bool:
            if self.writes_first is not None:
                await self.writes_first(WRITES_FIRST_MAX_S)
            content = await render()
            if content is None or respond is None:
                return False  # nothing to show there now: chat.update's render decides the same way
            return await respond(url, text=content[0], blocks=content[1], replace_original=True)
        return send

    async def _react(self, message: tuple[str, str, str] | None) -> bool:
        """✅ on a technician's thread message whose write is in the PSA; False if Slack would not."""
        if message is None:
            return False
        team_id, channel, ts = message
        client = await self._client(team_id)
        return client is not None and await react(client, channel, ts)

    def _card(self, actor: Actor, ticket_id: int, info: ChannelInfo, audience: str | None = None) -> Render:
        """The ticket's card for one channel, built when its update (or dispatch post) is sent (None: nothing to
        show there now). `audience`: "customer" for a customer's view whatever the channel says."""
        async def render() -> tuple[str, list[dict[str, Any]]] | None:
            customer = card_audience(info) == "customer" or audience == "customer"
            try:  # a customer's card built once (before: a technician's card, AI part included, then theirs)
                view = await self.views.ticket_by_id(actor, ticket_id, audience="customer" if customer else "tech")
            except DeskbridgeError:
                return None
            if view is None or not may_post_ticket(info, view.summary.customer_id):
                return None  # gone, or moved to another customer since the refresh was asked for
            return bk.ticket_fallback(view), bk.ticket_blocks(view)
        return render

    async def _dispatch(self, workspace_id: int, ticket_id: int | None) -> None:
        """A new ticket's card in each dispatch channel that may see it, once per channel.

        Only the light header is read here; each card is built when its post's turn comes in its channel
        (`render`), so a burst of new tickets never holds this worker (and the notes and refreshes queued
        behind it) for the card builds (up to AI_BUDGET_S each, core/chat/cards.py). A ticket with no number
        yet (a create still on its way to the PSA) renders nothing and is posted when its delivery dispatches it."""
        if ticket_id is None:
            return
        actor = Actor.system(workspace_id)
        try:  # the light header first: a sync creating thousands of tickets builds no card nobody is sent
            head = await self.views.tickets.header(actor, f"id:{ticket_id}")
            targets = await self.chat.dispatch_channels(workspace_id, PLATFORM, customer_id=head.summary.customer_id)
            if not targets:
                return
        except DeskbridgeError:
            return
        threads = {p.channel_id for p in await self.chat.posts_for_ticket(workspace_id, ticket_id, PLATFORM)}
        for team_id, channel_id, audience in targets:
            if channel_id in threads or (ticket_id, channel_id) in self._dispatched:
                continue  # the ticket already has a thread there (or its card is on the way)
            client = await self._client(team_id, workspace_id)
            if client is None:
                continue
            info = await self._seen(client, workspace_id, team_id, channel_id)
            if not may_post_ticket(info, head.summary.customer_id):
                continue  # shared with outsiders since it was bound, and not bound to their customer
            if card_audience(info) == "customer":
                audience = "customer"
            self._dispatched.add((ticket_id, channel_id))
            record = PostRecord(workspace_id=workspace_id, platform=PLATFORM, team_id=team_id, channel_id=channel_id,
                                kind="card", audience="customer" if audience == "customer" else "tech",
                                ticket_id=ticket_id, customer_id=head.summary.customer_id)
            # The thread and the post's own record (for redaction) in one transaction, not two (`_recorder`).
            self.poster.post_then(client, channel_id, render=self._card(actor, ticket_id, info, audience),
                                  then=self._recorder(workspace_id, ticket_id, team_id, channel_id, record))

    def _recorder(self, workspace_id: int, ticket_id: int, team_id: str, channel_id: str,
                  post: PostRecord | None = None) -> Callable[[Posted], Awaitable[None]]:
        async def record(result: Posted) -> None:
            try:
                if result.ts is None:
                    log.warning("dispatch card not posted", extra={"channel": channel_id, "error": result.error})
                    return
                await self.chat.record_post(workspace_id, ticket_id=ticket_id, platform=PLATFORM, team_id=team_id,
                                            channel_id=channel_id, message_ts=result.ts, post=post)
            finally:
                self._dispatched.discard((ticket_id, channel_id))
        return record

    async def _homes(self, workspace_id: int, ticket_id: int | None, *,
                     changes: dict[str, tuple[Any, Any]] | None = None, op_id: int | None = None,
                     created: bool = False) -> None:
        if self.commands is None:
            return
        await self.homes.fresh()  # Homes opened on other instances (a cached snapshot: a query at most every 2 s)
        if not self.homes.any_open():
            return  # nobody has their Home open: nothing to publish (the next opening publishes the newest)
        for team_id, user_id in await self.chat.app_home_targets(workspace_id, PLATFORM, ticket_id=ticket_id,
                                                                 changes=changes, op_id=op_id, created=created):
            self.homes.request(workspace_id, team_id, user_id)

    async def _publish_home(self, workspace_id: int, team_id: str, user_id: str) -> None:
        assert self.commands is not None
        actor = await self.chat.member_actor(workspace_id, PLATFORM, team_id, user_id)
        client = await self._client(team_id, workspace_id)
        if actor is None or client is None:
            return
        page = self.homes.page(team_id, user_id)
        if page is None:
            queue = await self.commands.my_queue(actor)
        else:  # the page they moved to, as the page click shows it (listeners/actions.py `_page`)
            queue = await self.commands.queue(actor, replace(grammar.parse_filters(page[0]), cursor=page[1]))
        await client.views_publish(user_id=user_id, view=bk.home_view(queue))

    async def _sla(self, event: SlaWarningEvent) -> None:
        targets = await self.chat.sla_warning_channels(event.workspace_id, PLATFORM, customer_id=event.customer_id)
        if not targets:
            return
        actor = Actor.system(event.workspace_id)
        psa_url = None
        customer_name = None
        if event.ticket_number is not None:
            try:
                detail = await self.views.tickets.get(actor, event.ticket_number)
                psa_url = await self.views.psa_url(actor, detail.summary.connection_id, detail.external_id)
                customer_name = detail.summary.customer_name
            except DeskbridgeError:
                pass
        view = SlaWarningView(ticket_number=event.ticket_number, subject=event.subject, customer_name=customer_name,
                              priority=event.priority or "", metric=event.metric, threshold=event.threshold,
                              remaining_s=event.remaining_s, due_at=event.due_at, psa_url=psa_url,
                              used_pct=event.used_pct)
        for team_id, channel_id in targets:  # core decides which channels may see it (ChatService)
            client = await self._client(team_id, event.workspace_id)
            if client is None or await self.shared.is_shared(client, channel_id):
                continue  # no token, or shared with outsiders since it was bound: SLA figures are internal
            # A technician's reply in the warning's thread goes to the ticket (recorded as a warning thread).
            self.poster.post_then(client, channel_id, text=bk.sla_fallback(view), blocks=bk.sla_blocks(view),
                                  then=self._warning_thread(event.workspace_id, event.ticket_id, team_id, channel_id),
                                  record=PostRecord(workspace_id=event.workspace_id, platform=PLATFORM,
                                                    team_id=team_id, channel_id=channel_id, kind="sla",
                                                    audience="tech", ticket_id=event.ticket_id,
                                                    customer_id=event.customer_id))

    async def _alert_offer(self, event: AlertNeedsTicket) -> None:
        """An alert that made no ticket, with "Create ticket", in the channels core names (technicians' only)."""
        if self.offers is None:
            return
        targets = await self.offers.channels(event.workspace_id, PLATFORM)
        view = await self.offers.view(event) if targets else None
        for team_id, channel_id in targets:
            client = await self._client(team_id, event.workspace_id)
            if view is None or client is None or await self.shared.is_shared(client, channel_id):
                continue  # no token, or shared with outsiders since it was bound: the RMM's details are internal
            self.poster.post_then(client, channel_id, text=ab.alert_offer_fallback(view),
                                  blocks=ab.alert_offer_blocks(view), then=_nothing)

    async def _risk(self, event: RiskAlertEvent) -> None:
        """A ticket newly at risk: to the workspace's SLA/dispatch channels core names, never a shared one."""
        targets = await self.chat.risk_alert_channels(event.workspace_id, PLATFORM, customer_id=event.customer_id)
        if not targets:
            return
        view = await self.views.risk_alert(event)
        for team_id, channel_id in targets:
            client = await self._client(team_id, event.workspace_id)
            if client is None or await self.shared.is_shared(client, channel_id):
                continue  # no token, or shared with outsiders since it was bound: risk is internal
            self.poster.post_then(client, channel_id, text=bk.risk_fallback(view), blocks=bk.risk_blocks(view),
                                  then=self._warning_thread(event.workspace_id, event.ticket_id, team_id, channel_id),
                                  record=PostRecord(workspace_id=event.workspace_id, platform=PLATFORM,
                                                    team_id=team_id, channel_id=channel_id, kind="risk",
                                                    audience="tech", ticket_id=event.ticket_id,
                                                    customer_id=event.customer_id))

    def _warning_thread(self, workspace_id: int, ticket_id: int | None, team_id: str,
                        channel_id: str) -> Callable[[Posted], Awaitable[None]]:
        async def record(result: Posted) -> None:
            if result.ts is not None and ticket_id is not None:
                await self.chat.record_post(workspace_id, ticket_id=ticket_id, platform=PLATFORM, team_id=team_id,
                                            channel_id=channel_id, message_ts=result.ts, ref={"kind": "warning"})
        return record


async def _nothing(_: Posted) -> None:
    """An offer needs no record: its button carries the alert."""
