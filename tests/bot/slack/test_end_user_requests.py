"""A customer's person asks for help in their bound channel: a private offer, one ticket under that customer
with the card in the message's thread; technicians, other channels, retries and `create` mode behave."""

from __future__ import annotations

import json

from sqlmodel import select

from store.db import Scope
from store.tables import Contact, Ticket
from tests.bot.slack.conftest import ADMIN, STRANGER, TECH

TS = "1800000000.000100"


async def _new_tickets(slack) -> list[Ticket]:
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        return list((await s.exec(select(Ticket).where(Ticket.source == "slack").order_by(Ticket.id))).all())


def _message(user: str, text: str, channel: str = "C_ACME", ts: str = TS) -> dict:
    return {"type": "message", "channel": channel, "channel_type": "channel", "user": user, "text": text, "ts": ts}


async def test_an_end_user_is_offered_a_ticket_and_gets_one_in_their_messages_thread(slack):
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:
        s.add(Contact(workspace_id=slack.ws, customer_id=slack.setup.customer_id, name="Stranger",
                      email="someone@customer.example", external_id="900", connection_id=slack.setup.connection_id))
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME")
    await slack.settle()
    slack.fake.clear()
    words = "My laptop will not boot since the update\nIt shows a blue screen with INACCESSIBLE_BOOT_DEVICE"
    await slack.event(_message(STRANGER, words), event_id="EvReq1")
    await slack.event(_message(STRANGER, words), event_id="EvReq1")  # Slack's retry of the same event
    await slack.settle()
    [offer] = slack.fake.of("chat.postEphemeral")
    assert offer.args["user"] == STRANGER and "ticket" in offer.args["text"]
    blocks = offer.args["blocks"] if isinstance(offer.args["blocks"], list) else json.loads(offer.args["blocks"])
    button = blocks[1]["elements"][0]
    assert await _new_tickets(slack) == []  # nothing opened before the person says so

    slack.fake.clear()
    for _ in range(2):  # a double click opens one ticket
        payload = slack.action_payload("x", button["value"], user=STRANGER, channel="C_ACME")
        payload["actions"][0]["action_id"] = button["action_id"]
        await slack.interactive(payload)
        await slack.settle()
    [ticket] = await _new_tickets(slack)
    assert ticket.customer_id == slack.setup.customer_id and ticket.contact_id is not None
    assert ticket.subject == "My laptop will not boot since the update" and ticket.description.startswith(words)
    cards = [c for c in slack.fake.of("chat.postMessage") if c.args.get("thread_ts") == TS]
    assert len(cards) == 1 and cards[0].args["channel"] == "C_ACME"
    said = [w.get("text", "") for w in slack.fake.webhooks]
    assert any("opened" in x for x in said) and any("already opened" in x for x in said)


async def test_technicians_other_channels_and_threads_get_no_offer(slack):
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME")
    await slack.settle()
    slack.fake.clear()
    await slack.event(_message(TECH, "Heads-up: maintenance tonight"), event_id="EvT1")
    await slack.event(_message(STRANGER, "Hello?", channel="C_RANDOM", ts="1800000001.1"), event_id="EvT2")
    await slack.event({**_message(STRANGER, "thanks", ts="1800000002.1"), "thread_ts": "1799999999.1"},
                      event_id="EvT3")
    await slack.settle()
    assert [c for c in slack.fake.of("chat.postEphemeral") if "ticket for this" in str(c.args.get("text"))] == []
    assert await _new_tickets(slack) == []


async def test_create_mode_opens_the_ticket_at_once(slack):
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME")
    await slack.c.workspaces.set_option(slack.ws, "end_user_requests", "create")
    await slack.settle()
    slack.fake.clear()
    await slack.event(_message(STRANGER, "Printer on floor 2 is offline"), event_id="EvC1")
    await slack.settle()
    [ticket] = await _new_tickets(slack)
    assert ticket.contact_id is None and ticket.description == "Printer on floor 2 is offline"  # the provenance
    # and "confirm the contact" are an internal note (tests/bot/slack/test_end_user_ticket_words.py)
    assert [c.args["channel"] for c in slack.fake.of("chat.postMessage") if c.args.get("thread_ts") == TS] == ["C_ACME"]
    assert slack.fake.of("chat.postEphemeral") == []
