"""Ticket threads: where each ticket's card was posted, and which ticket a thread belongs to."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from core.chat.cache import TTLCache
from core.chat.models import ThreadPost
from store.db import Database, Scope
from store.tables import ChatLink, Ticket


async def add_link(session: Any, workspace_id: int, *, ticket_id: int, platform: str, team_id: str,
                   channel_id: str, message_ts: str, ref: dict[str, Any] | None = None) -> None:
    """Record a ticket card's thread within the caller's write (idempotent per message)."""
    exists = (await session.exec(select(ChatLink).where(
        ChatLink.platform == platform, ChatLink.channel_id == channel_id,
        ChatLink.message_ts == message_ts))).first()
    if exists is None:
        session.add(ChatLink(workspace_id=workspace_id, ticket_id=ticket_id, platform=platform,
                             team_id=team_id, channel_id=channel_id, message_ts=message_ts,
                             conversation_ref=ref or {}))


class Threads:
    """The `chat_link` rows: one per ticket card that starts a thread."""

    def __init__(self, db: Database, *, cache: TTLCache) -> None:
        self.db = db
        self._cache = cache

    async def record_post(self, workspace_id: int, *, ticket_id: int, platform: str, team_id: str,
                          channel_id: str, message_ts: str, ref: dict[str, Any] | None = None) -> None:
        """Remember where a ticket card was posted (its thread)."""
        async with self.db.write(Scope.workspace(workspace_id)) as session:
            await add_link(session, workspace_id, ticket_id=ticket_id, platform=platform, team_id=team_id,
                           channel_id=channel_id, message_ts=message_ts, ref=ref)

    async def ticket_for_thread(self, workspace_id: int, platform: str, channel_id: str,
                                thread_ts: str) -> int | None:
        """The ticket whose card started this thread, if any."""
        key = ("thread", workspace_id, platform, channel_id, thread_ts)
        hit, value = self._cache.get(key)
        if hit and value is not None:
            return value
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            row = (await session.exec(select(ChatLink.ticket_id).where(
                ChatLink.platform == platform, ChatLink.channel_id == channel_id,
                ChatLink.message_ts == thread_ts))).first()
        if row is not None:
            self._cache.put(key, row)
        return row

    async def posts_for_ticket(self, workspace_id: int, ticket_id: int, platform: str) -> list[ThreadPost]:
        """Every thread of this ticket on a platform (root ts and the ts of the card to update)."""
        return (await self.posts_for_tickets(workspace_id, [ticket_id], platform)).get(ticket_id, [])

    async def posts_for_tickets(self, workspace_id: int, ticket_ids: list[int],
                                platform: str) -> dict[int, list[ThreadPost]]:
        """The threads of several tickets in one read (a burst of changes): ticket id -> its threads."""
        if not ticket_ids:
            return {}
        async with self.db.read(Scope.workspace(workspace_id)) as session:
            rows = (await session.exec(select(ChatLink, col(Ticket.customer_id)).join(
                Ticket, col(Ticket.id) == ChatLink.ticket_id).where(
                col(ChatLink.ticket_id).in_(sorted(set(ticket_ids))), ChatLink.platform == platform
            ).order_by(col(ChatLink.id)))).all()
        out: dict[int, list[ThreadPost]] = {}
        for r, customer_id in rows:
            # A warning's thread (an SLA post) takes replies for the ticket but is not one of its card threads:
            # no card to update there, no notes mirrored into it.
            if (r.conversation_ref or {}).get("kind") == "warning":
                continue
            out.setdefault(r.ticket_id, []).append(ThreadPost(
                team_id=r.team_id, channel_id=r.channel_id, thread_ts=r.message_ts,
                card_ts=str((r.conversation_ref or {}).get("card_ts") or r.message_ts), customer_id=customer_id))
        return out
