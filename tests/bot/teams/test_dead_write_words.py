"""A write the PSA would not take, told in a Teams ticket thread: what failed (in words, not an op kind), why, and
the next step that can work for that cause (a retry cannot bring back a deleted ticket, and cannot fix refused
content or revoked credentials by itself)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.notify import WriteDead
from core.outbox.recorder import dead_cause
from tests.bot.teams.test_threads import in_thread, open_thread


async def _dead(teams, tid: int, *, kind: str, status: int | None, error: str) -> str:
    await teams.c.notifier.notify(WriteDead(
        workspace_id=teams.ws, ticket_id=tid, ticket_number=5001, origin="system", occurred_at=datetime.now(UTC),
        op_id=42, kind=kind, error=error, cause=dead_cause(status, error), connection="Acme CW"))
    await teams.settle()
    return str(in_thread(teams, await_thread(teams))[-1]["text"])


def await_thread(teams) -> str:
    return teams.thread


@pytest.mark.parametrize("kind, words", [("add_note", "A note"), ("update_ticket", "A ticket change"),
                                         ("add_time_entry", "A time entry"), ("upload_attachment", "An attachment"),
                                         ("create_ticket", "A new ticket")])
async def test_the_write_is_named_in_words(teams, kind: str, words: str):
    teams.thread, tid = await open_thread(teams)
    text = await _dead(teams, tid, kind=kind, status=500, error="ConnectWise answered 500")
    assert text.startswith(f"{words} could not be delivered to the PSA"), text
    assert "A add" not in text and "A update" not in text and "_" not in text.split(":")[0]


async def test_a_deleted_ticket_is_not_offered_a_retry(teams):
    teams.thread, tid = await open_thread(teams)
    text = await _dead(teams, tid, kind="add_note", status=404, error="ticket 1042 not found")
    assert "no longer in the PSA" in text and "outbox discard 42" in text
    assert "redrive" not in text


async def test_refused_credentials_name_the_reauth_command(teams):
    teams.thread, tid = await open_thread(teams)
    text = await _dead(teams, tid, kind="add_note", status=401, error="API member credentials rejected")
    assert "deskbridge connection reauth Acme CW" in text and "outbox redrive 42" in text


async def test_refused_content_says_to_fix_it_before_a_retry(teams):
    teams.thread, tid = await open_thread(teams)
    text = await _dead(teams, tid, kind="update_ticket", status=400,
                       error="ConnectWise refused the change (HTTP 400) status: Needs a resolution note")
    assert "Needs a resolution note" in text
    assert "fix" in text.lower() and "outbox redrive 42" in text and "outbox discard 42" in text


async def test_a_security_role_refusal_says_to_grant_it_not_to_reauthenticate(teams):
    teams.thread, tid = await open_thread(teams)
    await teams.c.notifier.notify(WriteDead(
        workspace_id=teams.ws, ticket_id=tid, ticket_number=5001, origin="system", occurred_at=datetime.now(UTC),
        op_id=43, kind="add_time_entry", error="The API member's security role does not allow this. (HTTP 403)",
        cause="permission", connection="Acme CW"))
    await teams.settle()
    text = str(in_thread(teams, teams.thread)[-1]["text"])
    assert text.startswith("A time entry could not be delivered") and "security role" in text
    assert "reauth" not in text and "outbox redrive 43" in text


async def test_a_dead_write_in_a_customer_read_channel_is_told_to_its_author_privately(teams):
    """Slack tells the author ephemerally; Teams has none, so the author hears in their personal chat with the bot,
    and the customer's channel hears nothing of the PSA's error."""
    import sqlalchemy as sa

    from store.db import Scope
    from store.tables import OutboxOp
    from tests.bot.teams.conftest import TECH
    from tests.bot.teams.test_threads import make_admin

    await teams.send(teams.activity("my queue", user=TECH, ctype="personal", conversation="a:1personal-bob"))
    await make_admin(teams)
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
    posts = [c for c in teams.fake.of("create") if "could not be delivered" in str(c.body)]
    assert [c.conversation_id for c in posts] == ["a:1personal-bob"], [c.conversation_id for c in posts]
    text = posts[0].body["text"]
    assert text.startswith("#5001: A note could not be delivered") and "Needs a contact" in text
    assert in_thread(teams, teams.thread) == []
