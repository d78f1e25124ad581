"""A customer user's day in a Slack Connect channel, end to end (issue 21), through the real bolt app and the
fake Slack API: someone of the customer's own organisation asks for help in the channel their company shares
with the MSP, gets a ticket (its card in their message's thread), sees the technician's public reply there and
never an internal note, replies in the thread (their public reply, attributed to their PSA contact, moving the
ticket off "waiting on customer" as the PSA would) and looks the ticket up; nothing the MSP keeps internal is
ever sent into that channel."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import select

from store.db import Scope
from store.enums import Stage
from store.tables import ChatLink, Contact, OutboxOp, Ticket, TimelineEntry
from tests.bot.slack.conftest import ADMIN, STRANGER, TEAM, TECH

CONNECT = "C_ACME_CONNECT"  # shared with the customer's own Slack organisation
THEIRS = "T_ACME_CUSTOMER"  # the customer's organisation: its people are external here
ASKED = "1800000100.000100"
INTERNAL_WORDS = ("SMART errors", "vendor RMA 4411", "Asked in chat by")


def _to_connect(slack) -> str:
    """Everything the bot sent into the shared channel so far (posts, edits, ephemerals), as one text."""
    sent = [c.args for c in slack.fake.calls if c.args.get("channel") == CONNECT]
    return json.dumps(sent, ensure_ascii=False)


def _said_in_thread(slack, channel: str, thread: str) -> str:
    return json.dumps([c.args for c in slack.fake.of("chat.postMessage")
                       if c.args.get("channel") == channel and c.args.get("thread_ts") == thread], ensure_ascii=False)


async def _customer_says(slack, text: str, ts: str, event_id: str, thread: str | None = None) -> None:
    event: dict[str, Any] = {"type": "message", "channel": CONNECT, "channel_type": "channel", "user": STRANGER,
                             "user_team": THEIRS, "text": text, "ts": ts}
    if thread:
        event["thread_ts"] = thread
    await slack.event(event, event_id=event_id)
    await slack.settle()


async def test_a_customer_users_day_in_a_slack_connect_channel(slack):
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:
        contact = Contact(workspace_id=slack.ws, customer_id=slack.setup.customer_id, name="Sam Customer",
                          email="someone@customer.example", external_id="901", connection_id=slack.setup.connection_id)
        s.add(contact)
        await s.flush()
        contact_id = contact.id
    slack.fake.shared_channels.add(CONNECT)
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel=CONNECT)
    await slack.settle()
    assert (await slack.c.chat.channel(slack.ws, "slack", TEAM, CONNECT)).visibility == "customer"  # found shared
    slack.fake.clear()

    # 1. They ask for help in the channel, and accept the offer: one ticket, its card in their message's thread.
    words = "The conference room screen shows no signal\nWe have a client meeting at 2pm"
    await _customer_says(slack, words, ASKED, "EvDay1")
    [offer] = [c for c in slack.fake.of("chat.postEphemeral") if c.args["user"] == STRANGER]
    blocks = offer.args["blocks"] if isinstance(offer.args["blocks"], list) else json.loads(offer.args["blocks"])
    button = blocks[1]["elements"][0]
    payload = slack.action_payload("x", button["value"], user=STRANGER, channel=CONNECT)
    payload["actions"][0]["action_id"] = button["action_id"]
    payload["user"]["team_id"] = THEIRS
    await slack.interactive(payload)
    await slack.settle()
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:
        [ticket] = (await s.exec(select(Ticket).where(Ticket.subject.like("%conference room screen%")))).all()
        assert ticket.customer_id == slack.setup.customer_id and ticket.contact_id == contact_id
        assert ticket.description == words
        ticket.number, ticket.external_id = 7301, "7301"  # the PSA has taken it
        ticket_id = ticket.id
    assert "conference room screen" in _said_in_thread(slack, CONNECT, ASKED)  # the card, in their thread

    # 2. A technician works it from their own channel: an internal note, then a public reply.
    await slack.slash("/ticket", "7301", user=TECH)
    await slack.settle()
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        tech_thread = (await s.exec(select(ChatLink.message_ts).where(ChatLink.channel_id == "C_TECH",
                                                                       ChatLink.ticket_id == ticket_id))).one()
    await slack.event({"type": "message", "channel": "C_TECH", "user": TECH, "ts": "1800000101.000100",
                       "text": "SMART errors on the display PC, vendor RMA 4411", "thread_ts": tech_thread},
                      event_id="EvDay2")
    await slack.event({"type": "message", "channel": "C_TECH", "user": TECH, "ts": "1800000102.000100",
                       "text": "!public A technician is on the way with a spare HDMI cable.",
                       "thread_ts": tech_thread}, event_id="EvDay3")
    await slack.settle()
    in_their_thread = _said_in_thread(slack, CONNECT, ASKED)
    assert "A technician is on the way with a spare HDMI cable." in in_their_thread

    # 3. The technician waits on them; their reply in the thread is their public reply and resumes the ticket.
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:
        (await s.get(Ticket, ticket_id)).stage = Stage.WAITING.value
    await _customer_says(slack, "Thanks, the room is free until 1:45", "1800000103.000100", "EvDay4", thread=ASKED)
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        row = await s.get(Ticket, ticket_id)
        public = (await s.exec(select(TimelineEntry.body).where(TimelineEntry.ticket_id == ticket_id,
                                                                 TimelineEntry.kind == "note_public"))).all()
        ops = (await s.exec(select(OutboxOp).where(OutboxOp.ticket_id == ticket_id).order_by(OutboxOp.id))).all()
    assert row.stage == Stage.IN_PROGRESS.value
    assert "Thanks, the room is free until 1:45" in public
    theirs = [o.payload for o in ops if o.payload.get("text") == "Thanks, the room is free until 1:45"]
    assert theirs and theirs[0]["visibility"] == "public" and theirs[0]["author_contact_external_id"] == "901"

    # 4. They look the ticket up: the customer's card (the public reply and theirs, nothing internal).
    await slack.slash("/ticket", "7301", user=STRANGER, channel=CONNECT)
    await slack.settle()
    looked = json.dumps([c.args for c in slack.fake.of("chat.postMessage") if c.args.get("channel") == CONNECT
                         and not c.args.get("thread_ts")][-1:] + slack.fake.webhooks[-1:], ensure_ascii=False)
    assert "spare HDMI cable" in looked and "room is free" in looked

    # All day long: no internal word reached the channel their organisation reads.
    assert "spare HDMI cable" in _to_connect(slack)
    for secret in INTERNAL_WORDS:
        assert secret not in _to_connect(slack), secret
