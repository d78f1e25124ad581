"""Ticket threads (core/chat/threads.py): where a ticket's cards were posted, and which ticket a thread is."""

from __future__ import annotations

from store.db import Database, Scope
from store.tables import Ticket
from tests.core.chat.conftest import ChatEnv


async def ticket(db: Database, ws: int, *, number: int = 1042, customer: int | None = None,
                 assignee: int | None = None) -> int:
    """A standalone ticket (no PSA), for the chat rows that point at one."""
    async with db.write(Scope.workspace(ws)) as s:
        t = Ticket(workspace_id=ws, number=number, subject="VPN down", priority="high", stage="new",
                   customer_id=customer, assignee_member_id=assignee)
        s.add(t)
        await s.flush()
        assert t.id is not None
        return t.id


async def test_a_card_starts_a_thread_that_leads_back_to_its_ticket(env: ChatEnv, db: Database) -> None:
    t = await ticket(db, env.ws, customer=env.acme.id)
    chat = env.chat
    await chat.record_post(env.ws, ticket_id=t, platform="slack", team_id="T1", channel_id="C1", message_ts="1.0")
    await chat.record_post(env.ws, ticket_id=t, platform="slack", team_id="T1", channel_id="C1", message_ts="1.0")
    await chat.record_post(env.ws, ticket_id=t, platform="slack", team_id="T1", channel_id="C2", message_ts="2.0",
                           ref={"card_ts": "2.5"})  # a thread a shortcut started: the card is a reply in it
    assert await chat.ticket_for_thread(env.ws, "slack", "C1", "1.0") == t
    assert await chat.ticket_for_thread(env.ws, "slack", "C1", "9.9") is None
    assert await chat.ticket_for_thread(env.ws, "teams", "C1", "1.0") is None
    posts = await chat.posts_for_ticket(env.ws, t, "slack")
    assert [(p.channel_id, p.thread_ts, p.card_ts, p.customer_id) for p in posts] == [
        ("C1", "1.0", "1.0", env.acme.id), ("C2", "2.0", "2.5", env.acme.id)]
    assert await chat.posts_for_ticket(env.ws, t, "teams") == []
