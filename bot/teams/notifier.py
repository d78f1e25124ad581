"""TeamsNotifier: core's domain events, delivered into Teams ticket threads (a card's reply chain).

- NoteAdded -> a reply in every Teams thread of the ticket except the one it was written in (`source`: no
  echo); what a channel may get is core's rule (`may_post_ticket`, `note_visible_in`): a channel the customer
  reads gets public notes only, a channel bound to another customer nothing. The text is posted as plain text,
  exactly as written.
- WriteDelivered / TicketChanged (not from Teams) -> the ticket's cards are redrawn in place, for the
  channel's audience (`card_audience`), so "queued" turns into delivered.
- WriteDead -> the thread says the write failed and what an admin can do, only where failures may be told
  (`failures_visible_in`).
- TicketCreated, and WriteDelivered of a ticket created here -> the ticket's card as a new post in each
  channel bound `dispatch` that may see it (core decides: ChatService.dispatch_channels); the post's reply
  chain becomes the ticket's thread.
- AlertNeedsTicket -> the alert with a customer choice and "Create ticket" in the technicians' channels core
  names (core/intake/offers.py; bot/teams/alerts.py takes the click); never a shared channel.
- SlaWarningEvent -> the channels core names (ChatService.sla_warning_channels), each once per warning (the
  SLA monitor emits each threshold once); never a shared channel.
Proactive posts use the conversation references stored in our database (ConversationRefs).

`notify` queues and returns (the outbox worker and sync call it inline); one worker keeps each ticket's
events in order; card redraws are asked of bot/teams/redraws.py (per conversation, built when sent). Posts go
through the paced poster; a refused post is logged as an error, never silent.

Over 400 lines: one place for every event kind's delivery and who may see it; the dead-write telling (author's
personal chat, dispatch mention) is the part to split out next.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from microsoft_teams.api import Account
from microsoft_teams.api.activities.message.message import MessageActivityInput
from microsoft_teams.api.clients.conversation import CreateConversationParams

from bot.slack.work import AfterAck
from bot.teams import cards, requests
from bot.teams.poster import PostRefused, Target, message
from bot.teams.redraws import CardRedraws, TicketViews
from core.chat import (
    ChannelInfo,
    ThreadPost,
    card_audience,
    customer_author,
    failures_visible_in,
    may_post_ticket,
    note_visible_in,
    seen_with,
)
from core.context import Actor
from core.errors import DeskbridgeError
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

if TYPE_CHECKING:
    from bot.teams.app import TeamsSurface

log = logging.getLogger("deskbridge.teams")
PLATFORM = "teams"
VISIBILITY_LABEL = {"public": "Public reply", "internal": "Internal note", "resolution": "Resolution"}


# What a write that gave up is called, and the next step that can work for why it gave up (core/outbox/recorder.py
# dead_cause): a retry cannot bring back a deleted ticket, nor fix refused content or credentials by itself.
DEAD_WHAT = {"create_ticket": "A new ticket", "update_ticket": "A ticket change", "add_note": "A note",
             "add_time_entry": "A time entry", "upload_attachment": "An attachment", "alert_action": "An alert action"}
DEAD_NEXT = {
    "credentials": ("The PSA refused Deskbridge's credentials, so nothing reaches it until an admin re-enters them "
                    "(`deskbridge connection reauth {connection}`) and retries: `@Deskbridge outbox redrive {op_id}`."),
    "permission": ("The PSA's API account may not do this (its security role); Deskbridge's other writes go on. An "
                   "admin grants it in the PSA, then retries: `@Deskbridge outbox redrive {op_id}` (or drops it: "
                   "`@Deskbridge outbox discard {op_id}`)."),
    "deleted": ("The ticket is no longer in the PSA (deleted or merged there), so nothing more can be written to it. "
                "An admin can drop it: `@Deskbridge outbox discard {op_id}`."),
    "refused": ("Sent again as it is, it would be refused again: fix what the PSA names (in the PSA, or write it "
                "again here), then an admin can retry it (`@Deskbridge outbox redrive {op_id}`) or drop it "
                "(`@Deskbridge outbox discard {op_id}`)."),
}
DEAD_RETRY = "An admin can retry it: `@Deskbridge outbox redrive {op_id}`."


def dead_text(event: WriteDead) -> str:
    """A write that gave up, for a technicians' thread: what, the PSA's reason, and the step that can work."""
    if event.kind == "tenant_action":
        return f"A Microsoft 365 quick action was not done: {event.error[:300]}\n" + DEAD_RETRY.format(op_id=event.op_id)
    what = DEAD_WHAT.get(event.kind, "A change")
    step = DEAD_NEXT.get(event.cause, DEAD_RETRY).format(op_id=event.op_id, connection=event.connection or "NAME")
    return f"{what} could not be delivered to the PSA: {event.error[:300]}\n{step}"


class TeamsNotifier:
    def __init__(self, surface: TeamsSurface) -> None:
        self.s = surface
        self.c = surface.container
        self.queue = AfterAck(workers=1, quiet_s=0.0, max_defer_s=0.0)
        self.redraws = CardRedraws(surface.poster)
        self.views = TicketViews(self.c.chat_views)

    async def notify(self, event: DomainEvent) -> None:
        if event.ticket_id is None and not isinstance(event, SlaWarningEvent | AlertNeedsTicket):
            return
        if not self.queue.submit(lambda: self._handle(event)):
            log.error("Teams event dropped: the queue is full", extra={"event": type(event).__name__})

    def room(self) -> int:
        """Events the queue can still take before it refuses one (core.notify.room)."""
        return self.queue.max_backlog - self.queue.backlog

    async def drain(self) -> None:
        await self.queue.drain()
        await self.redraws.drain()

    async def close(self) -> None:
        await self.queue.close()
        await self.redraws.close()

    async def _handle(self, event: DomainEvent) -> None:
        try:
            if isinstance(event, NoteAdded):
                await self._note(event)
            elif isinstance(event, WriteDead):
                await self._dead(event)
            elif isinstance(event, WriteDelivered):
                await self.refresh_cards(event.workspace_id, event.ticket_id)
                if event.kind == "create_ticket":  # created in chat or the API: no TicketCreated is emitted
                    await self._dispatch(event.workspace_id, event.ticket_id)
            elif isinstance(event, TicketChanged) and event.origin != PLATFORM:
                await self.refresh_cards(event.workspace_id, event.ticket_id)
            elif isinstance(event, TicketCreated):
                await self._dispatch(event.workspace_id, event.ticket_id)
            elif isinstance(event, SlaWarningEvent):
                await self._sla(event)
            elif isinstance(event, AlertNeedsTicket):
                await self._alert_offer(event)
            elif isinstance(event, RiskAlertEvent):
                await self._risk(event)
        except PostRefused as exc:
            log.error("Teams delivery refused: %s", exc, extra={"event": type(event).__name__})
        except Exception:  # noqa: BLE001 - a notifier logs delivery failures, never raises
            log.exception("teams notify failed", extra={"event": type(event).__name__})

    async def _seen(self, workspace_id: int, team_id: str, channel_id: str) -> ChannelInfo:
        """The channel's binding, and whether Teams says outsiders read it (a shared channel)."""
        info = await self.c.chat.channel(workspace_id, PLATFORM, team_id, channel_id)
        ref = await self.s.refs.get(workspace_id, tenant_id=team_id, conversation_id=channel_id)
        return seen_with(info, shared=bool(ref and ref.shared))

    async def _threads(self, event: DomainEvent) -> list[ThreadPost]:
        assert event.ticket_id is not None
        return await self.c.chat.posts_for_ticket(event.workspace_id, event.ticket_id, PLATFORM)

    async def _target(self, workspace_id: int, post: ThreadPost, *, thread: bool) -> Target | None:
        ref = await self.s.refs.get(workspace_id, tenant_id=post.team_id, conversation_id=post.channel_id)
        if ref is None:
            return None  # the app was removed from that conversation
        chain = thread and ref.conversation_type == "channel"  # chats have no reply chains: the chat itself
        conv = f"{ref.conversation_id};messageid={post.thread_ts}" if chain else ref.conversation_id
        return Target(conv, ref.service_url)

    async def _conversation_type(self, workspace_id: int, post: ThreadPost) -> str | None:
        ref = await self.s.refs.get(workspace_id, tenant_id=post.team_id, conversation_id=post.channel_id)
        return ref.conversation_type if ref is not None else None

    async def _note(self, event: NoteAdded) -> None:
        for post in await self._threads(event):
            if event.source in (f"{PLATFORM}:{post.channel_id}:{post.thread_ts}", f"{PLATFORM}:{post.channel_id}:"):
                continue  # written in this very thread (or chat, which has no reply chains): no echo
            info = await self._seen(event.workspace_id, post.team_id, post.channel_id)
            if not may_post_ticket(info, post.customer_id) or not note_visible_in(info, event.visibility):
                continue
            target = await self._target(event.workspace_id, post, thread=True)
            if target is None:
                continue
            label = VISIBILITY_LABEL.get(event.visibility, event.visibility)
            who = customer_author(event.author_name) if card_audience(info) == "customer" else event.author_name
            head = f"{label} · {who or 'PSA'}" + (" (from the PSA)" if event.origin == "psa" else "")
            # A contact's own chat has no reply chains: a Reply button under the note keeps their answer on
            # this ticket (bot/teams/requests.py). Channels' reply chains already do.
            personal = (card_audience(info) == "customer" and event.ticket_id is not None
                        and await self._conversation_type(event.workspace_id, post) == "personal")
            act = message(f"{head}\n\n{event.body}",
                          requests.reply_card(event.ticket_id, event.ticket_number) if personal else None)  # type: ignore[arg-type]
            act.text_format = "plain"  # exactly what was written: no markdown or HTML interpretation
            await self.s.poster.post(target, act)
        await self.refresh_cards(event.workspace_id, event.ticket_id)

    async def _dead(self, event: WriteDead) -> None:
        told: set[str] = set()  # authors told privately, once per tenant
        for post in await self._threads(event):
            info = await self._seen(event.workspace_id, post.team_id, post.channel_id)
            if not may_post_ticket(info, post.customer_id):
                continue
            if not failures_visible_in(info):  # the PSA's error is the MSP's business: the author alone is told
                if post.team_id not in told:
                    told.add(post.team_id)
                    await self._tell_author(event, post, await self._target(event.workspace_id, post, thread=False))
                continue
            target = await self._target(event.workspace_id, post, thread=True)
            if target is not None:
                act = message(dead_text(event))
                act.text_format = "plain"
                await self.s.poster.post(target, act)
        await self.refresh_cards(event.workspace_id, event.ticket_id)

    async def _tell_author(self, event: WriteDead, post: ThreadPost, channel: Target | None) -> None:
        """Teams has no ephemeral message: the technician who wrote it hears in their personal chat with the bot,
        opened for them (a proactive 1:1) when they never wrote to the bot there; when Teams will not open one, in
        a technicians' dispatch channel, @mentioning them. Never where the customer reads."""
        tenant_id = post.team_id
        author = await self.c.chat.write_author(event.workspace_id, event.op_id, PLATFORM, tenant_id)
        if author is None:
            log.warning("a dead write in a customer-read channel has no Teams author to tell; the dead letters list it",
                        extra={"op_id": event.op_id})
            return
        num = f"#{event.ticket_number}: " if event.ticket_number is not None else ""
        ref = await self.s.refs.personal_for(event.workspace_id, tenant_id=tenant_id, user_id=author)
        member = None
        if ref is not None:
            target: Target | None = Target(ref.conversation_id, ref.service_url)
        else:
            member = await self._member(channel, author)
            target = await self._open_personal(event.workspace_id, tenant_id, author, member, channel)
        if target is None:
            if not await self.tell_in_dispatch(event.workspace_id, tenant_id, post.customer_id, member,
                                               num + dead_text(event)):
                log.warning("a dead write in a customer-read channel could not be told to its author (no personal "
                            "chat, no technicians' dispatch channel); the dead letters list it",
                            extra={"op_id": event.op_id})
            return
        act = message(num + dead_text(event))
        act.text_format = "plain"
        await self.s.poster.post(target, act)

    async def _member(self, channel: Target | None, aad_id: str) -> Any:
        """The technician in the channel's roster (their Teams id and name), or None."""
        if channel is None:
            return None
        try:
            api = self.s.sdk.api.clone(service_url=channel.service_url)
            return await api.conversations.get_member_by_id(channel.conversation_id.split(";", 1)[0], aad_id)
        except Exception:  # noqa: BLE001 - not in the roster any more: told in dispatch without a mention
            log.warning("a technician to tell of a dead write is not in the channel's roster")
            return None

    async def _open_personal(self, workspace_id: int, tenant_id: str, aad_id: str, member: Any,
                             channel: Target | None) -> Target | None:
        """Start the bot's 1:1 chat with a technician (Bot Connector `POST /v3/conversations`), remembered as their
        personal chat. None when Teams refuses (the app is not installed for them: chat-platforms.md 3.5)."""
        if channel is None or member is None:
            return None
        try:
            api = self.s.sdk.api.clone(service_url=channel.service_url)
            made = await api.conversations.create(CreateConversationParams(
                members=[Account(id=member.id, name=member.name)], tenant_id=tenant_id,
                channel_data={"tenant": {"id": tenant_id}}))
        except Exception as exc:  # noqa: BLE001 - Teams refusing only means this technician is told elsewhere
            log.warning("could not open a personal chat to tell a technician of a dead write (%s)",
                        type(exc).__name__, extra={"tenant": tenant_id})
            return None
        await self.s.refs.remember(workspace_id, tenant_id=tenant_id, conversation_id=made.id,
                                   service_url=channel.service_url, conversation_type="personal", user_id=aad_id)
        return Target(made.id, channel.service_url)

    async def tell_in_dispatch(self, workspace_id: int, team_id: str, customer_id: int | None, member: Any,
                               text: str) -> bool:
        """The first technicians-only dispatch channel of the customer in the team, @mentioning `member` (a Teams
        account: id and name; None: no mention). False when there is none (the caller logs it)."""
        for team, channel_id, audience in await self.c.chat.dispatch_channels(workspace_id, PLATFORM,
                                                                              customer_id=customer_id):
            info = await self._seen(workspace_id, team, channel_id)
            if team != team_id or audience != "tech" or not failures_visible_in(info):
                continue
            target = await self._channel_target(workspace_id, team, channel_id)
            if target is None:
                continue
            if member is not None:
                name = str(member.name or "you")[:80]
                act = message(f"<at>{name}</at> {text}")
                act.add_mention(Account(id=member.id, name=name), text=name, add_text=False)
            else:
                act = message(text)
                act.text_format = "plain"
            await self.s.poster.post(target, act)
            return True
        return False

    async def refresh_cards(self, workspace_id: int, ticket_id: int | None) -> None:
        """Redraw every Teams card of the ticket, each for its channel's audience: asked of the card redraws
        (bot/teams/redraws.py: per conversation, a card's waiting redraw absorbs this one), each built when sent."""
        if ticket_id is None:
            return
        posts = await self.c.chat.posts_for_ticket(workspace_id, ticket_id, PLATFORM)
        if not posts:
            return
        self.views.changed(ticket_id)
        for post in posts:
            # a card that is a reply in a chain (an end user's request: its root is their message) is updated there
            target = await self._target(workspace_id, post, thread=post.card_ts != post.thread_ts)
            if target is not None:
                self.redraws.put(target, post.card_ts, partial(self._post_card, workspace_id, ticket_id, post))

    async def _post_card(self, workspace_id: int, ticket_id: int, post: ThreadPost) -> MessageActivityInput | None:
        """A ticket's card in one channel, as the ticket is now, for the channel's audience (None: not there)."""
        view = await self.views.get(workspace_id, ticket_id)
        if view is None:
            return None
        info = await self._seen(workspace_id, post.team_id, post.channel_id)
        if not may_post_ticket(info, view.summary.customer_id):
            return None  # an old thread in a channel since bound to another customer: nothing of it, ever
        shown = view
        if card_audience(info) == "customer":
            shown = await self.c.chat_views.ticket_from_detail(Actor.system(workspace_id), view.detail,
                                                               audience="customer")
        return message(cards.fallback(shown), cards.ticket_card(shown))

    async def _channel_target(self, workspace_id: int, team_id: str, channel_id: str) -> Target | None:
        ref = await self.s.refs.get(workspace_id, tenant_id=team_id, conversation_id=channel_id)
        return Target(ref.conversation_id, ref.service_url) if ref is not None else None

    async def _dispatch(self, workspace_id: int, ticket_id: int | None) -> None:
        """A new ticket's card in each dispatch channel that may see it, once per channel."""
        if ticket_id is None:
            return
        actor = Actor.system(workspace_id)
        try:  # the light header first: a sync creating thousands of tickets builds no card nobody is sent
            head = await self.c.tickets.header(actor, f"id:{ticket_id}")
            targets = await self.c.chat.dispatch_channels(workspace_id, PLATFORM, customer_id=head.summary.customer_id)
            if not targets:
                return
            tech = await self.c.chat_views.ticket_by_id(actor, ticket_id)
        except DeskbridgeError:
            return
        if tech is None:
            return  # no number yet: its delivery dispatches it
        threads = {p.channel_id for p in await self.c.chat.posts_for_ticket(workspace_id, ticket_id, PLATFORM)}
        for team_id, channel_id, aud in targets:
            if channel_id in threads:
                continue  # the ticket already has a thread there
            info = await self._seen(workspace_id, team_id, channel_id)
            if not may_post_ticket(info, tech.summary.customer_id):
                continue
            target = await self._channel_target(workspace_id, team_id, channel_id)
            if target is None:
                continue
            view = tech
            if aud == "customer" or card_audience(info) == "customer":
                view = await self.c.chat_views.ticket_from_detail(actor, tech.detail, audience="customer")
            root = await self.s.poster.post(target, message(cards.fallback(view), cards.ticket_card(view)))
            await self.c.chat.record_post(workspace_id, ticket_id=ticket_id, platform=PLATFORM, team_id=team_id,
                                          channel_id=channel_id, message_ts=root,
                                          ref={"conversation_id": target.conversation_id,
                                               "service_url": target.service_url, "audience": view.audience})

    async def _risk(self, event: RiskAlertEvent) -> None:
        """A ticket newly at risk: to the workspace's SLA/dispatch channels core names, never a shared one."""
        targets = await self.c.chat.risk_alert_channels(event.workspace_id, PLATFORM, customer_id=event.customer_id)
        if not targets:
            return
        view = await self.c.chat_views.risk_alert(event)
        for team_id, channel_id in targets:
            ref = await self.s.refs.get(event.workspace_id, tenant_id=team_id, conversation_id=channel_id)
            if ref is None or ref.shared:
                continue  # removed, or shared with outsiders since it was bound: risk is internal
            text = f"At risk ({view.score:.0%}): #{view.ticket_number} {view.subject}"
            await self.s.poster.post(Target(ref.conversation_id, ref.service_url), message(text[:200],
                                                                                           cards.risk_card(view)))

    async def _sla(self, event: SlaWarningEvent) -> None:
        targets = await self.c.chat.sla_warning_channels(event.workspace_id, PLATFORM, customer_id=event.customer_id)
        if not targets:
            return
        actor = Actor.system(event.workspace_id)
        psa_url = customer_name = None
        if event.ticket_number is not None:
            try:
                detail = await self.c.tickets.get(actor, event.ticket_number)
                psa_url = await self.c.chat_views.psa_url(actor, detail.summary.connection_id, detail.external_id)
                customer_name = detail.summary.customer_name
            except DeskbridgeError:
                pass
        view = SlaWarningView(ticket_number=event.ticket_number, subject=event.subject, customer_name=customer_name,
                              priority=event.priority or "", metric=event.metric, threshold=event.threshold,
                              remaining_s=event.remaining_s, due_at=event.due_at, psa_url=psa_url,
                              used_pct=event.used_pct)
        for team_id, channel_id in targets:  # core decides which channels may see it
            ref = await self.s.refs.get(event.workspace_id, tenant_id=team_id, conversation_id=channel_id)
            if ref is None or ref.shared:
                continue  # removed, or shared with outsiders since it was bound: SLA figures are internal
            target = Target(ref.conversation_id, ref.service_url)
            text = f"SLA {'breached' if view.breached else 'warning'}: #{view.ticket_number} {view.subject}"
            await self.s.poster.post(target, message(text[:200], cards.sla_card(view)))

    async def _alert_offer(self, event: AlertNeedsTicket) -> None:
        offers = self.c.alert_offers
        targets = await offers.channels(event.workspace_id, PLATFORM)
        view = await offers.view(event) if targets else None
        for team_id, channel_id in targets:
            ref = await self.s.refs.get(event.workspace_id, tenant_id=team_id, conversation_id=channel_id)
            if view is None or ref is None or ref.shared:
                continue  # removed, or shared with outsiders since it was bound: the RMM's details are internal
            await self.s.poster.post(Target(ref.conversation_id, ref.service_url),
                                     message(view.title[:200], cards.alert_offer_card(view)))
