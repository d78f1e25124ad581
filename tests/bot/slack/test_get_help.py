"""The pinned "Get help" message in a customer channel (bot/slack/listeners/help.py, core/intake/help_post.py),
through the real bolt app against the loopback Slack fake: binding posts and pins one message, binding again
updates it (never a second), a deleted one is posted again, unbinding removes it; its button opens a form for
the customer's people only, and the form opens one ticket whatever Slack redelivers, with its card in the
channel; a form that cannot become a ticket gives the person their words back."""

from __future__ import annotations

import json

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from sqlmodel import select

from bot.slack.listeners.get_help import OPEN, SUBMIT
from core.intake import help_post as h
from store.db import Scope
from store.tables import ChatLink, ChatPost, Ticket
from tests.bot.slack.conftest import ADMIN, STRANGER, TEAM, TECH

CUST = "C_CUST"


async def _bind(slack, text: str = "customer ACME") -> None:
    await slack.slash("/deskbridge", f"bind {text}", user=ADMIN, channel=CUST)
    await slack.settle()


def _help_posts(slack) -> list:
    return [c for c in slack.fake.of("chat.postMessage")
            if c.args.get("channel") == CUST and OPEN in json.dumps(c.args.get("blocks") or [])]


async def _records(slack) -> list[ChatPost]:
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        return list((await s.exec(select(ChatPost).where(ChatPost.kind == h.KIND).order_by(ChatPost.id))).all())


def _click(slack, user: str, ts: str) -> dict:
    return slack.action_payload("x", "help", user=user, channel=CUST, message_ts=ts) | {
        "actions": [{"action_id": OPEN, "block_id": "b", "value": "help", "type": "button", "action_ts": "1.2"}]}


def _submit(view: dict, text: str, *, user: str = STRANGER, view_id: str = "V_HELP1") -> dict:
    return {"type": "view_submission", "team": {"id": TEAM}, "user": {"id": user, "team_id": TEAM},
            "api_app_id": "A0001", "trigger_id": "trig.h",
            "view": {**view, "id": view_id, "hash": "h1",
                     "state": {"values": {"text": {"text": {"type": "plain_text_input", "value": text}}}}}}


async def _tickets(slack, like: str) -> list[Ticket]:
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        return list((await s.exec(select(Ticket).where(Ticket.subject.like(f"%{like}%")))).all())


def _ephemerals(slack, user: str) -> list[str]:
    return [str(c.args.get("text")) for c in slack.fake.of("chat.postEphemeral") if c.args.get("user") == user]


async def test_binding_posts_and_pins_one_get_help_message_and_binding_again_updates_it(slack):
    await _bind(slack)
    [post] = _help_posts(slack)
    [record] = await _records(slack)
    assert slack.fake.pins[CUST] == [record.message_ts]
    assert (record.customer_id, record.audience) == (slack.setup.customer_id, "customer")
    for block in post.args["blocks"]:
        Block.parse(block).validate_json()
    assert "Get help" in json.dumps(post.args["blocks"]) and "DB-" not in json.dumps(post.args["blocks"])

    await _bind(slack)  # the same customer again
    await _bind(slack, "customer GLOBEX")  # and another customer
    assert len(_help_posts(slack)) == 1  # never a second message
    updates = [c for c in slack.fake.of("chat.update") if c.args.get("ts") == record.message_ts]
    assert len(updates) == 2
    assert slack.fake.pins[CUST] == [record.message_ts]
    [record] = await _records(slack)
    assert record.customer_id == slack.setup.other_customer_id  # now GLOBEX's message


async def test_a_deleted_get_help_message_is_posted_again_and_unbinding_removes_it(slack):
    await _bind(slack)
    [first] = await _records(slack)
    slack.fake.delete_message(CUST, first.message_ts)  # someone in the channel deleted it
    await _bind(slack)
    assert len(_help_posts(slack)) == 2
    records = await _records(slack)
    assert [r.redacted_at is not None for r in records] == [True, False]
    assert slack.fake.pins[CUST] == [records[1].message_ts]

    await slack.slash("/deskbridge", "unbind customer", user=ADMIN, channel=CUST)
    await slack.settle()
    assert [c.args["ts"] for c in slack.fake.of("chat.delete")] == [records[1].message_ts]
    assert slack.fake.pins[CUST] == [] and all(r.redacted_at for r in await _records(slack))


async def test_without_pins_write_the_admin_is_told_how_to_pin_it(slack):
    slack.fake.fail("pins.add", error="missing_scope")
    await _bind(slack)
    assert len(_help_posts(slack)) == 1
    told = json.dumps(slack.fake.webhooks)
    assert "could not be pinned (missing_scope)" in told and "pins:write" in told


async def test_a_shared_customer_channel_keeps_its_get_help_message(slack):
    slack.fake.shared_channels.add(CUST)  # Slack Connect: the customer's people read it
    await _bind(slack)
    [record] = await _records(slack)
    await _bind(slack)
    assert not [c for c in slack.fake.of("chat.delete") if c.args.get("ts") == record.message_ts]
    assert (await _records(slack))[0].redacted_at is None


async def test_get_help_opens_a_form_and_the_form_opens_one_ticket_in_the_channel(slack):
    await _bind(slack)
    [record] = await _records(slack)
    await slack.interactive(_click(slack, STRANGER, record.message_ts))
    view = slack.last_view()
    assert view["callback_id"] == SUBMIT
    View(**view).validate_json()

    empty = await slack.interactive(_submit(view, "   "))
    assert empty.json()["response_action"] == "errors" and "Write what you need help with" in empty.text
    assert await _tickets(slack, "Outlook") == []

    words = "Outlook asks for my password every hour\nSince the update on Monday."
    resp = await slack.interactive(_submit(view, words))
    assert resp.status_code == 200 and resp.text == ""  # the form closes
    await slack.interactive(_submit(view, words))  # Slack redelivers the same submission
    await slack.settle()
    [ticket] = await _tickets(slack, "Outlook asks")
    assert ticket.customer_id == slack.setup.customer_id and ticket.description == words
    cards = [c for c in slack.fake.of("chat.postMessage") if c.args.get("channel") == CUST
             and "Outlook asks" in json.dumps(c.args) and not c.args.get("thread_ts")]
    assert len(cards) == 1
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        [link] = (await s.exec(select(ChatLink).where(ChatLink.ticket_id == ticket.id))).all()
    assert link.channel_id == CUST  # the card's thread is the ticket's
    said = _ephemerals(slack, STRANGER)
    assert any("opened" in x and "Outlook asks" in x for x in said) and any("already" in x for x in said)


async def test_technicians_and_unbound_channels_are_told_what_to_do_and_words_come_back(slack):
    await _bind(slack)
    [record] = await _records(slack)
    await slack.interactive(_click(slack, TECH, record.message_ts))
    assert not slack.fake.of("views.open")
    [told] = _ephemerals(slack, TECH)
    assert h.ONLY_END_USERS in told and "/ticket new" in told

    await slack.interactive(_click(slack, STRANGER, record.message_ts))
    view = slack.last_view()
    await slack.slash("/deskbridge", "unbind customer", user=ADMIN, channel=CUST)  # while their form is open
    await slack.settle()
    await slack.interactive(_submit(view, "Printer on floor 3 prints blank pages"))
    await slack.settle()
    assert await _tickets(slack, "Printer on floor 3") == []
    last = _ephemerals(slack, STRANGER)[-1]
    assert "What you wrote" in last and "> Printer on floor 3 prints blank pages" in last
    assert last.startswith(f":warning: {h.NOT_BOUND}\n{h.NOT_BOUND_HINT}")  # a next step, never a bare refusal


async def test_with_requests_off_no_get_help_message_is_posted_and_a_click_says_so(slack):
    await _bind(slack)
    [record] = await _records(slack)
    await slack.c.workspaces.set_option(slack.ws, "end_user_requests", "off")
    await _bind(slack, "customer GLOBEX")
    assert len(_help_posts(slack)) == 1  # nothing new posted
    await slack.interactive(_click(slack, STRANGER, record.message_ts))
    assert not slack.fake.of("views.open")
    assert h.REQUESTS_OFF in _ephemerals(slack, STRANGER)[-1]
