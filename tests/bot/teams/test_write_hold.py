"""A write click whose write is not accepted within the hold budget (bot/teams/hold.py): the invoke is answered
"saving…" (a valid Adaptive Card 1.5), and the outcome follows through the Bot Connector: the card redrawn with
the write, or a refusal told to the clicker, loudly, and never where the customer reads. One click stays one write
whatever Teams redelivers. Signed activities against the loopback Bot Connector; the budget is set to 0 where a
test needs every click held (the acceptance then never finishes before the answer: it waits on the database)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import sqlalchemy as sa

from bot.teams import cards
from store.db import Scope
from store.tables import OutboxOp
from tests.bot.teams.conftest import CHANNEL, TECH, TENANT, text_of
from tests.bot.teams.test_commands import assert_valid_card
from tests.bot.teams.test_threads import make_admin, open_thread

SAVING = "Saving your time entry on #5001…"


def click(h: Any, card_id: str, data: dict[str, Any], *, conversation: str = CHANNEL) -> dict[str, Any]:
    """An Action.Execute on the card `card_id` (Teams names the card's message in `replyToId`)."""
    return h.activity(kind="invoke", conversation=conversation, name="adaptiveCard/action", replyToId=card_id,
                      value={"action": {"type": "Action.Execute", "verb": cards.VERB,
                                        "data": {"ref": "5001", **data}}, "trigger": "manual"})


TIME = {"action": "time", "submit": True, "minutes": "15m", "notes": "Swapped the PSU", "billable": "true"}
BAD_TIME = {**TIME, "minutes": "banana", "notes": "Reseated the RAM and ran memtest"}


async def card_in_channel(h: Any) -> str:
    thread, _ = await open_thread(h)
    return thread.split(";messageid=")[1]


async def time_ops(h: Any) -> list[OutboxOp]:
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return list((await s.exec(sa.select(OutboxOp).where(OutboxOp.kind == "add_time_entry"))).scalars().all())


def answer_card(resp: Any) -> dict[str, Any]:
    body = resp.json()
    assert body["type"] == cards.CARD, body
    return body["value"]


def updates_of(h: Any, card_id: str) -> list[dict[str, Any]]:
    return [c.body for c in h.fake.calls if c.op == "update" and c.activity_id == card_id]


def hold_everything(h: Any) -> None:
    h.c.teams.holds.hold_s = 0.0


async def test_within_the_budget_the_answer_is_the_outcome(teams):
    card_id = await card_in_channel(teams)
    teams.c.teams.holds.hold_s = 4.5  # the setting's ceiling (under Teams' 5 s): one click is accepted well within
    resp = await teams.send(click(teams, card_id, TIME))
    card = answer_card(resp)
    assert "Saving your" not in json.dumps(card)
    assert "#5001 VPN down" in text_of({"value": card}) and "1 write(s) queued for the PSA." in json.dumps(card)
    assert updates_of(teams, card_id) == []  # nothing to follow up
    assert len(await time_ops(teams)) == 1


async def test_a_held_write_answers_saving_then_the_card_shows_the_write(teams):
    card_id = await card_in_channel(teams)
    hold_everything(teams)
    resp = await teams.send(click(teams, card_id, TIME), settle=False)
    card = answer_card(resp)
    assert_valid_card(card)
    assert text_of({"value": card}).splitlines()[1] == SAVING
    assert card["refresh"]["action"]["data"] == {"action": "open", "ref": "5001"}  # a later look shows the ticket
    await teams.settle()
    (update,) = updates_of(teams, card_id)  # the follow-up, on the clicked card
    (shown,) = [a["content"] for a in update["attachments"]]
    assert_valid_card(shown)
    assert "#5001 VPN down" in text_of(update) and "1 write(s) queued for the PSA." in json.dumps(shown) and "Saving" not in str(update)
    assert len(await time_ops(teams)) == 1


async def test_a_held_click_redelivered_is_one_write_and_one_follow_up(teams):
    card_id = await card_in_channel(teams)
    hold_everything(teams)
    body = click(teams, card_id, TIME)
    answers = await asyncio.gather(*(teams.send(body, settle=False) for _ in range(3)))
    assert [SAVING in r.text for r in answers] == [True, True, True]
    await teams.settle()
    late = await teams.send(body)  # Teams retries once more after the outcome: the same answer, nothing written
    assert "1 write(s) queued for the PSA." in late.text
    assert len(await time_ops(teams)) == 1
    assert len(updates_of(teams, card_id)) == 1


async def test_a_held_refusal_in_a_technicians_channel_gives_the_form_back_and_mentions_the_clicker(teams):
    card_id = await card_in_channel(teams)
    hold_everything(teams)
    resp = await teams.send(click(teams, card_id, BAD_TIME), settle=False)
    assert SAVING.replace("time entry", "time entry") in resp.text
    await teams.settle()
    assert await time_ops(teams) == []
    (update,) = updates_of(teams, card_id)
    (form,) = [a["content"] for a in update["attachments"]]
    assert_valid_card(form)
    shown = json.dumps(form)
    assert "'banana' is not a duration." in shown and "Reseated the RAM and ran memtest" in shown  # nothing lost
    (told,) = [c for c in teams.fake.of("create") if c.conversation_id == f"{CHANNEL};messageid={card_id}"]
    assert told.body["text"].startswith("<at>aad-bob</at> Your time entry on #5001 was not saved: 'banana' is not")
    (mention,) = [e for e in told.body["entities"] if e["type"] == "mention"]
    assert mention["mentioned"]["id"] == f"29:{TECH}" and mention["text"] == "<at>aad-bob</at>"


async def _customer_channel_card(h: Any) -> str:
    await make_admin(h)
    await h.say("bind customer ACME shared")
    return await card_in_channel(h)


async def test_a_held_refusal_where_the_customer_reads_is_told_in_the_clickers_personal_chat(teams):
    await teams.send(teams.activity("my queue", user=TECH, ctype="personal", conversation="a:1personal-bob"))
    card_id = await _customer_channel_card(teams)
    hold_everything(teams)
    teams.fake.clear()
    await teams.send(click(teams, card_id, BAD_TIME))
    (update,) = updates_of(teams, card_id)  # the card is the ticket again, with no error on it
    assert "#5001 VPN down" in text_of(update)
    assert "banana" not in str(update) and "not saved" not in str(update) and "Saving" not in str(update)
    posts = teams.fake.of("create")
    assert [c.conversation_id for c in posts] == ["a:1personal-bob"]  # nothing in the customer's channel
    text = posts[0].body["text"]
    assert text.startswith("Your time entry on #5001 was not saved: 'banana' is not a duration.")
    assert "What you wrote:" in text and "Reseated the RAM and ran memtest" in text
    assert await time_ops(teams) == []


async def test_without_a_personal_chat_one_is_opened_for_the_refusal(teams):
    card_id = await _customer_channel_card(teams)
    hold_everything(teams)
    teams.fake.clear()
    await teams.send(click(teams, card_id, BAD_TIME))
    (opened,) = teams.fake.of("conversation")
    assert opened.body["members"] == [{"id": f"29:{TECH}"}] and opened.body["tenantId"] == TENANT
    (post,) = teams.fake.of("create")
    assert post.conversation_id == opened.conversation_id and "was not saved" in post.body["text"]
    ref = await teams.c.teams.refs.personal_for(teams.ws, tenant_id=TENANT, user_id=TECH)
    assert ref is not None and ref.conversation_id == opened.conversation_id  # kept for the next time


async def test_when_teams_will_not_open_a_personal_chat_the_refusal_is_logged_and_the_customer_sees_nothing(
        teams, caplog):
    card_id = await _customer_channel_card(teams)
    hold_everything(teams)
    teams.fake.clear()
    teams.fake.fail("conversation", status=403, retry_after=None)
    with caplog.at_level(logging.ERROR, logger="deskbridge.teams"):
        await teams.send(click(teams, card_id, BAD_TIME))
    assert teams.fake.of("create") == []
    (update,) = updates_of(teams, card_id)
    assert "banana" not in str(update) and "Saving" not in str(update)
    assert any("could not be told" in r.getMessage() for r in caplog.records)
    assert "Reseated the RAM" not in caplog.text  # the technician's words stay out of the log


async def test_a_delivery_after_the_follow_up_leaves_the_card_showing_it_delivered(teams):
    """The follow-up redraw and the outbox's delivery redraw go through the notifier in order: the card's last
    update shows the write in the PSA, never the older "queued" card of the click."""
    from datetime import UTC, datetime

    from core.notify import WriteDelivered

    card_id = await card_in_channel(teams)
    hold_everything(teams)
    await teams.send(click(teams, card_id, TIME), settle=False)
    (op,) = await time_ops_when_written(teams)
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:
        (await s.get(OutboxOp, op.id)).status = "done"
    await teams.c.notifier.notify(WriteDelivered(
        workspace_id=teams.ws, ticket_id=op.ticket_id, ticket_number=5001, origin="system",
        occurred_at=datetime.now(UTC), op_id=op.id, kind="add_time_entry"))
    await teams.settle()
    last = updates_of(teams, card_id)[-1]
    assert "#5001 VPN down" in text_of(last) and "queued" not in json.dumps(last) and "Saving" not in str(last)


async def time_ops_when_written(h: Any) -> list[OutboxOp]:
    for _ in range(600):
        ops = await time_ops(h)
        if ops:
            return ops
        await asyncio.sleep(0.01)
    raise AssertionError("the held click's write never came")


async def test_a_follow_up_with_nothing_announced_since_the_click_shows_its_acceptance_card_without_a_build(
        teams, monkeypatch):
    """Under a burst the follow-ups' builds were the queue after the acceptances (notes/session11-teams.md): a held
    click's own answer card is the ticket as it is while no change to the ticket was announced since."""
    card_id = await card_in_channel(teams)
    hold_everything(teams)
    listeners = teams.c.teams.listeners
    real, built = listeners.card_action, []

    async def counting(ws: int, inc: Any, data: dict[str, Any]) -> Any:
        built.append(data.get("action"))
        return await real(ws, inc, data)

    monkeypatch.setattr(listeners, "card_action", counting)
    await teams.send(click(teams, card_id, TIME))
    (update,) = updates_of(teams, card_id)
    assert "#5001 VPN down" in text_of(update) and "1 write(s) queued for the PSA." in json.dumps(update)
    assert built == ["time"]  # the acceptance only: the follow-up built nothing again
