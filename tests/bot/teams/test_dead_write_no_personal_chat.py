"""A technician's write that died in a customer-read (shared) Teams channel is told to its author privately. An
author who never opened a personal chat with the bot was told nothing (session 8 left this): now the bot opens the
1:1 itself (Bot Connector `POST /v3/conversations` with the member found in the channel's roster), tells them
there, and remembers it as their personal chat; the customer's channel hears nothing either way. When Teams
refuses the 1:1 (the app not installed for them), the author is @mentioned in a technicians' dispatch channel of
the ticket's customer if there is one; nothing is ever posted where the customer reads, and the write stays on the
dead letters list."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from core.notify import WriteDead
from store.db import Scope
from store.tables import OutboxOp
from tests.bot.teams.conftest import TECH
from tests.bot.teams.test_threads import in_thread, make_admin, open_thread

DISPATCH = "19:dispatch@thread.tacv2"


async def _dead_in_shared_channel(teams, *, dispatch: bool = False) -> None:
    await make_admin(teams)
    if dispatch:
        await teams.say("bind dispatch", conversation=DISPATCH)
        assert "dispatch" in teams.last_text().lower()
    await teams.say("bind customer ACME shared")
    teams.thread, tid = await open_thread(teams)
    await teams.say("!public Your VPN is fixed", conversation=teams.thread)
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        op_id = (await s.exec(sa.select(OutboxOp.id).where(OutboxOp.kind == "add_note"))).scalar_one()
    teams.fake.clear()
    await teams.c.notifier.notify(WriteDead(
        workspace_id=teams.ws, ticket_id=tid, ticket_number=5001, origin="system", occurred_at=datetime.now(UTC),
        op_id=op_id, kind="add_note", error="Needs a contact (HTTP 400)", cause="refused", connection="Acme CW"))
    await teams.settle()


async def test_an_author_without_a_personal_chat_is_told_in_one_the_bot_opens(teams):
    await _dead_in_shared_channel(teams)  # Bob never wrote to the bot in a personal chat
    [opened] = teams.fake.of("conversation")
    assert [m["id"] for m in opened.body["members"]] == [f"29:{TECH}"]
    assert opened.body.get("isGroup") in (None, False) and opened.body["tenantId"] == teams.fake.tenant_id
    posts = [c for c in teams.fake.of("create") if "could not be delivered" in str(c.body)]
    assert [c.conversation_id for c in posts] == [opened.conversation_id]
    assert posts[0].body["text"].startswith("#5001: A note could not be delivered")
    assert "Needs a contact" in posts[0].body["text"]
    assert in_thread(teams, teams.thread) == []  # the customer's channel: nothing
    # remembered: the next dead write goes to the same chat, no second conversation is created
    ref = await teams.c.teams.refs.personal_for(teams.ws, tenant_id=teams.fake.tenant_id, user_id=TECH)
    assert ref is not None and ref.conversation_id == opened.conversation_id


async def test_when_teams_refuses_the_1to1_nothing_reaches_the_customer_channel(teams, caplog):
    teams.fake.fail("conversation", status=403, retry_after=None)
    await _dead_in_shared_channel(teams)
    assert [c for c in teams.fake.calls if "could not be delivered" in str(c.body)] == []
    assert in_thread(teams, teams.thread) == []
    assert any("could not open a personal chat" in r.getMessage() for r in caplog.records)
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:  # still listed for an operator
        assert (await s.exec(sa.select(OutboxOp.id).where(OutboxOp.kind == "add_note"))).first() is not None


async def test_when_teams_refuses_the_1to1_the_author_is_mentioned_in_dispatch(teams):
    teams.fake.fail("conversation", status=403, retry_after=None)
    await _dead_in_shared_channel(teams, dispatch=True)
    told = [c for c in teams.fake.calls if "could not be delivered" in str(c.body)]
    assert [c.conversation_id for c in told] == [DISPATCH], [(c.op, c.conversation_id) for c in told]
    body = told[0].body
    assert body["text"].startswith("<at>") and "#5001: A note could not be delivered" in body["text"]
    [mention] = [e for e in body.get("entities") or [] if e.get("type") == "mention"]
    assert mention["mentioned"]["id"] == f"29:{TECH}"
    assert in_thread(teams, teams.thread) == []
