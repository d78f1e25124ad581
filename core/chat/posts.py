"""What the bot posted in each channel, and what must be redacted when a channel's readers change.

Slack Connect and Teams shared channels show their history to the people who join. So when a channel
becomes readable by a customer (bound `shared`, or shared with another organisation), the bot's earlier
posts there that hold internal content (internal notes, technician cards with SLA and time, failed-write
details, SLA warnings) or anything of another customer's tickets must go. Surfaces record each post
(`ChatPosts.record`); `redactions` says, from the rule `redaction_for`, what to do with each; the surface
deletes or re-renders, then calls `done`. The rule itself is pure and lives with the other visibility
rules (core/chat/visibility.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from core.chat.models import ChannelInfo
from core.chat.visibility import DELETE, redaction_for
from store.db import Database, Scope
from store.tables import ChatLink, ChatPost, Ticket
from store.types import utcnow


@dataclass(frozen=True, slots=True, kw_only=True)
class PostRecord:
    """What a bot post holds: whose ticket it is about and who may read it."""

    workspace_id: int
    platform: str
    team_id: str
    channel_id: str
    kind: str  # card, note, dead, sla, notice
    audience: str  # "tech" (internal content) or "customer" (fit for that ticket's customer)
    ticket_id: int | None = None
    customer_id: int | None = None
    thread_ts: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Redaction:
    message_ts: str
    action: str  # DELETE or CUSTOMER_CARD (re-render the card as the customer's view)
    ticket_id: int | None
    customer_id: int | None = None
    post_id: int | None  # None: a card known only from its thread link (posted before posts were recorded)


@dataclass(frozen=True, slots=True, kw_only=True)
class RedactionPlan:
    items: list[Redaction]
    # Threads of other customers' tickets in the channel: people's own messages in them stay (a bot cannot
    # delete what a person wrote), so an admin is told to review them.
    foreign_threads: int


async def add_post(session: Any, rec: PostRecord, message_ts: str) -> None:
    """Record a post the platform accepted within the caller's write (idempotent per message)."""
    exists = (await session.exec(select(ChatPost.id).where(
        ChatPost.platform == rec.platform, ChatPost.channel_id == rec.channel_id,
        ChatPost.message_ts == message_ts))).first()
    if exists is None:
        session.add(ChatPost(workspace_id=rec.workspace_id, platform=rec.platform, team_id=rec.team_id,
                             channel_id=rec.channel_id, message_ts=message_ts, thread_ts=rec.thread_ts,
                             ticket_id=rec.ticket_id, customer_id=rec.customer_id, kind=rec.kind,
                             audience=rec.audience))


class ChatPosts:
    """The record of bot posts per channel (table `chat_post`)."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self._clock = clock

    async def record(self, rec: PostRecord, message_ts: str) -> None:
        """Remember a post the platform accepted (idempotent per message)."""
        async with self.db.write(Scope.workspace(rec.workspace_id)) as session:
            await add_post(session, rec, message_ts)

    async def redactions(self, workspace_id: int, platform: str, team_id: str, channel_id: str,
                         info: ChannelInfo) -> RedactionPlan:
        """Every bot post in the channel that its readers may no longer see, oldest first."""
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            posts = (await session.exec(select(ChatPost).where(
                ChatPost.platform == platform, ChatPost.team_id == team_id, ChatPost.channel_id == channel_id,
                col(ChatPost.redacted_at).is_(None)).order_by(col(ChatPost.id)))).all()
            links = (await session.exec(select(ChatLink, Ticket.customer_id).join(
                Ticket, col(Ticket.id) == ChatLink.ticket_id).where(
                ChatLink.platform == platform, ChatLink.team_id == team_id,
                ChatLink.channel_id == channel_id))).all()
            known = set((await session.exec(select(ChatPost.message_ts).where(
                ChatPost.platform == platform, ChatPost.channel_id == channel_id))).all())
        items: list[Redaction] = []
        for p in posts:
            action = redaction_for(info, customer_id=p.customer_id, kind=p.kind, audience=p.audience)
            if action is not None:
                items.append(Redaction(message_ts=p.message_ts, action=action, ticket_id=p.ticket_id, post_id=p.id))
        foreign = 0
        for link, customer_id in links:
            if (link.conversation_ref or {}).get("kind") == "warning":
                continue  # an SLA warning's thread: its post is recorded (and redacted) as a post
            if info.customer_id is None or customer_id != info.customer_id:
                foreign += 1
            card_ts = str((link.conversation_ref or {}).get("card_ts") or link.message_ts)
            if card_ts in known:
                continue
            # a card from before posts were recorded: its audience is unknown, so it counts as internal
            action = redaction_for(info, customer_id=customer_id, kind="card", audience="tech")
            if action is not None:
                items.append(Redaction(message_ts=card_ts, action=action, ticket_id=link.ticket_id,
                                       customer_id=customer_id, post_id=None))
        return RedactionPlan(items=items, foreign_threads=foreign if info.visibility == "customer" else 0)

    async def done(self, workspace_id: int, platform: str, team_id: str, channel_id: str,
                   redactions: Sequence[Redaction]) -> None:
        """Record what was redacted: deleted posts are marked, re-rendered cards are now the customer's."""
        now = self._clock()
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            for r in redactions:
                values = {"redacted_at": now} if r.action == DELETE else {"audience": "customer"}
                if r.post_id is not None:
                    await session.execute(sa.update(ChatPost).where(col(ChatPost.id) == r.post_id).values(**values))
                    continue
                session.add(ChatPost(workspace_id=workspace_id, platform=platform, team_id=team_id,
                                     channel_id=channel_id, message_ts=r.message_ts, ticket_id=r.ticket_id,
                                     customer_id=r.customer_id, kind="card", audience="customer",
                                     redacted_at=now if r.action == DELETE else None))
