"""SlackNotifier: domain events from sync, the outbox and the SLA monitor, delivered into Slack.

- NoteAdded (not from Slack) -> a post in every thread of the ticket; customer-visibility channels only
  get public notes. Notes whose origin is Slack are never mirrored back (no echo loops).
- TicketChanged (not from Slack), WriteDelivered -> the ticket's cards are re-rendered (chat.update),
  so "queued" turns into delivered.
- WriteDead -> the thread says the write failed and how an admin can redrive it.
- SlaWarningEvent -> the channels bound to SLA alerts, and tech channels bound to that customer.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.slack import blocks as bk
from bot.slack import text as t
from bot.slack.poster import SlackPoster, make_client
from core.chat import ChatService, ThreadPost
from core.chat_views import ChatViews
from core.context import Actor
from core.errors import DeskbridgeError
from core.notify import DomainEvent, NoteAdded, SlaWarningEvent, TicketChanged, WriteDead, WriteDelivered
from core.views import SlaWarningView

log = logging.getLogger("deskbridge.slack")
PLATFORM = "slack"
NOT_MIRRORED = frozenset({"slack"})


class SlackNotifier:
    """Implements core.notify.Notifier for Slack."""

    def __init__(self, *, chat: ChatService, views: ChatViews, poster: SlackPoster, api_url: str) -> None:
        self.chat = chat
        self.views = views
        self.poster = poster
        self.api_url = api_url

    async def notify(self, event: DomainEvent) -> None:
        try:
            if isinstance(event, NoteAdded):
                await self._note(event)
            elif isinstance(event, WriteDead):
                await self._dead(event)
            elif isinstance(event, (WriteDelivered, TicketChanged)):
                if isinstance(event, TicketChanged) and event.origin in NOT_MIRRORED:
                    return
                await self.refresh_cards(event.workspace_id, event.ticket_id)
            elif isinstance(event, SlaWarningEvent):
                await self._sla(event)
        except Exception:  # noqa: BLE001 - a notifier logs delivery failures, never raises
            log.exception("slack notify failed", extra={"event": type(event).__name__})

    async def _client(self, team_id: str) -> Any | None:
        inst = await self.chat.installation(PLATFORM, team_id)
        if inst is None or not inst.bot_token:
            return None
        return make_client(self.api_url, inst.bot_token)

    async def _threads(self, event: DomainEvent) -> list[ThreadPost]:
        if event.ticket_id is None:
            return []
        return await self.chat.posts_for_ticket(event.workspace_id, event.ticket_id, PLATFORM)

    async def _note(self, event: NoteAdded) -> None:
        if event.origin in NOT_MIRRORED:
            return
        for post in await self._threads(event):
            info = await self.chat.channel(event.workspace_id, PLATFORM, post.team_id, post.channel_id)
            if info.visibility == "customer" and event.visibility != "public":
                continue
            client = await self._client(post.team_id)
            if client is None:
                continue
            body = bk.psa_note_blocks(event.author_name, event.visibility, event.body)
            await self.poster.post(client, post.channel_id, text=f"{event.author_name or 'PSA'}: {event.body[:200]}",
                                   blocks=body, thread_ts=post.thread_ts)
        await self.refresh_cards(event.workspace_id, event.ticket_id)

    async def _dead(self, event: WriteDead) -> None:
        what = t.OP_NAMES.get(event.kind, event.kind)
        msg = t.WRITE_DEAD.format(what=what, error=bk.esc(event.error[:300]), op_id=event.op_id)
        for post in await self._threads(event):
            info = await self.chat.channel(event.workspace_id, PLATFORM, post.team_id, post.channel_id)
            if info.visibility == "customer":
                continue  # a failed write (and the PSA's error text) is the MSP's business, not the customer's
            client = await self._client(post.team_id)
            if client is not None:
                await self.poster.post(client, post.channel_id, text=msg, blocks=[
                    {"type": "section", "text": {"type": "mrkdwn", "text": msg}}], thread_ts=post.thread_ts)
        await self.refresh_cards(event.workspace_id, event.ticket_id)

    async def refresh_cards(self, workspace_id: int, ticket_id: int | None) -> int:
        """Re-render every card of a ticket (pending/delivered/dead state, new notes, status)."""
        if ticket_id is None:
            return 0
        posts = await self.chat.posts_for_ticket(workspace_id, ticket_id, PLATFORM)
        if not posts:
            return 0
        actor = Actor.system(workspace_id)
        try:
            tech = await self.views.ticket_by_id(actor, ticket_id)
        except DeskbridgeError:
            return 0
        if tech is None:
            return 0
        done = 0
        for post in posts:
            info = await self.chat.channel(workspace_id, PLATFORM, post.team_id, post.channel_id)
            view = tech
            if info.visibility == "customer":
                view = await self.views.ticket_from_detail(actor, tech.detail, audience="customer")
            client = await self._client(post.team_id)
            if client is not None and await self.poster.update(
                    client, post.channel_id, post.card_ts, text=bk.ticket_fallback(view), blocks=bk.ticket_blocks(view)):
                done += 1
        return done

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
                              remaining_s=event.remaining_s, due_at=event.due_at, psa_url=psa_url)
        for team_id, channel_id in targets:  # core decides which channels may see it (ChatService)
            client = await self._client(team_id)
            if client is not None:
                await self.poster.post(client, channel_id, text=bk.sla_fallback(view), blocks=bk.sla_blocks(view))
