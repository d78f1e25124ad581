"""A channel's customer binding holds for its old threads too, and a channel the customer can now read is
swept of the bot's earlier internal and other-customer posts (Slack Connect shows the history)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel import select

from core.chat import CUSTOMER_CARD, DELETE, ChannelInfo, redaction_for
from core.notify import NoteAdded, SlaWarningEvent, TicketChanged, TicketCreated, WriteDead
from store.db import Scope
from store.tables import ChatLink, ChatPost, Ticket
from tests.bot.slack.conftest import ADMIN

CH = "C_MIXED"


async def _ticket(h, number):
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return (await s.exec(select(Ticket).where(Ticket.number == number))).one()


async def _thread(h, ticket, channel=CH):
    """The ticket's card thread in the channel (an SLA warning's reply-only thread is not one)."""
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        rows = (await s.exec(select(ChatLink).where(ChatLink.channel_id == channel,
                                                    ChatLink.ticket_id == ticket.id))).all()
    (card,) = [r for r in rows if (r.conversation_ref or {}).get("kind") != "warning"]
    return card


def _now():
    return datetime.now(UTC)


def _note(h, t, visibility, body, origin="psa"):
    return NoteAdded(workspace_id=h.ws, ticket_id=t.id, ticket_number=t.number, origin=origin, occurred_at=_now(),
                     entry_id=1, visibility=visibility, author_name="Carla", body=body)


def _sla(h, t):
    return SlaWarningEvent(workspace_id=h.ws, ticket_id=t.id, ticket_number=t.number, origin="system",
                           occurred_at=_now(), metric="resolution", threshold=90, remaining_s=300, due_at=_now(),
                           customer_id=t.customer_id, subject=t.subject, priority="high")


async def _everything_about(h, t, secret):
    """Every kind of post the bot makes about a ticket: notes of each kind, a card update, a failed write,
    an SLA warning, an API comment."""
    for event in (_note(h, t, "internal", f"internal {secret}"), _note(h, t, "public", f"public {secret}"),
                  _note(h, t, "public", f"customer reply {secret}", origin="email"),
                  _note(h, t, "public", f"api comment {secret}", origin="api"),
                  TicketChanged(workspace_id=h.ws, ticket_id=t.id, ticket_number=t.number, origin="psa",
                                occurred_at=_now(), changes={"subject": ("a", "b")}),
                  WriteDead(workspace_id=h.ws, ticket_id=t.id, ticket_number=t.number, origin="slack",
                            occurred_at=_now(), op_id=999, kind="add_note", error=f"refused {secret}"),
                  _sla(h, t)):
        await h.c.notifier.notify(event)
    await h.settle()


def _in_channel(h, channel=CH):
    return [c for c in h.fake.calls if c.args.get("channel") == channel
            and c.method in ("chat.postMessage", "chat.update", "chat.postEphemeral")]


async def _two_customers_threads(slack):
    """An internal channel (also bound `sla`) with the cards of an ACME and a Globex ticket and their notes."""
    await slack.slash("/deskbridge", "bind sla", user=ADMIN, channel=CH)
    await slack.slash("/ticket", "5001", channel=CH)  # ACME
    await slack.slash("/ticket", "5002", channel=CH)  # Globex
    acme, globex = await _ticket(slack, 5001), await _ticket(slack, 5002)
    await slack.c.notifier.notify(_note(slack, acme, "internal", "ACME internal: door code 1234"))
    await slack.c.notifier.notify(_note(slack, globex, "internal", "Globex password is hunter2"))
    await slack.c.notifier.notify(_note(slack, globex, "public", "Globex: we are on it"))
    await slack.c.notifier.notify(_sla(slack, globex))
    await slack.settle()
    assert "hunter2" in json.dumps([c.args for c in _in_channel(slack)])  # internal channel: all of it
    return acme, globex


async def test_a_channel_bound_to_a_customer_gets_nothing_more_of_other_customers_threads(slack):
    acme, globex = await _two_customers_threads(slack)
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel=CH)
    slack.fake.clear()
    await _everything_about(slack, globex, "GLOBEX-SECRET")
    assert _in_channel(slack) == []  # not a note, not a card update, not a failure, not an SLA warning
    await _everything_about(slack, acme, "ACME-OK")
    got = json.dumps([c.args for c in _in_channel(slack)])
    assert "internal ACME-OK" in got and "api comment ACME-OK" in got  # its own customer's threads go on


async def test_dispatch_into_a_channel_bound_to_another_customer_posts_nothing(slack):
    await slack.slash("/deskbridge", "bind dispatch", user=ADMIN, channel="C_DISP")
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_DISP")
    globex, acme = await _ticket(slack, 5002), await _ticket(slack, 5001)
    slack.fake.clear()
    for t in (globex, acme):
        await slack.c.notifier.notify(TicketCreated(workspace_id=slack.ws, ticket_id=t.id, ticket_number=t.number,
                                                    origin="psa", occurred_at=_now(), subject=t.subject,
                                                    customer_id=t.customer_id))
    await slack.settle()
    posted = [c.args for c in _in_channel(slack, "C_DISP") if c.method == "chat.postMessage"]
    assert len(posted) == 1 and "VPN down" in posted[0]["text"]


async def test_sharing_a_channel_redacts_internal_and_other_customers_posts(slack):
    acme, globex = await _two_customers_threads(slack)
    acme_thread, globex_thread = await _thread(slack, acme), await _thread(slack, globex)
    before = {(c.args["channel"], c.args.get("thread_ts"), c.args["text"]) for c in slack.fake.of("chat.postMessage")}
    assert before
    slack.fake.shared_channels.add(CH)
    slack.fake.clear()
    await slack.slash("/deskbridge", "bind customer ACME shared", user=ADMIN, channel=CH)
    deleted = {c.args["ts"] for c in slack.fake.of("chat.delete")}
    # Globex's card and everything posted in its thread, ACME's internal note and the SLA warning: deleted
    assert globex_thread.message_ts in deleted
    remaining = {ts for (ch, ts) in slack.fake.messages if ch == CH}
    left = json.dumps([slack.fake.messages[(CH, ts)] for ts in remaining])
    assert "hunter2" not in left and "Globex" not in left and "door code" not in left and "SLA" not in left
    # ACME's card stays, redrawn as the customer's view
    (redraw,) = [c.args for c in slack.fake.of("chat.update") if c.args["ts"] == acme_thread.message_ts]
    assert "VPN down" in json.dumps(redraw["blocks"]) and "SLA" not in json.dumps(redraw["blocks"])
    # the admin is told, including the Globex thread people may have written in
    told = slack.fake.webhooks[-1]
    assert told["response_type"] == "ephemeral" and "1 thread(s)" in told["text"] and "removed" in told["text"]
    # a second bind finds nothing left to do
    slack.fake.clear()
    await slack.slash("/deskbridge", "bind customer ACME shared", user=ADMIN, channel=CH)
    assert slack.fake.of("chat.delete") == []
    # and nothing of Globex is posted there any more, in customer view or any other
    await _everything_about(slack, globex, "GLOBEX-LATER")
    assert "GLOBEX-LATER" not in json.dumps([c.args for c in _in_channel(slack)])
    assert not [c for c in _in_channel(slack) if c.args.get("ts") == globex_thread.message_ts]


async def test_slack_connect_sharing_an_internal_customer_channel_redacts_it(slack):
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME2")
    await slack.slash("/ticket", "5001", channel="C_ACME2")
    acme = await _ticket(slack, 5001)
    await slack.c.notifier.notify(_note(slack, acme, "internal", "internal swordfish"))
    await slack.c.notifier.notify(_note(slack, acme, "public", "public hello"))
    await slack.settle()
    slack.fake.shared_channels.add("C_ACME2")
    slack.fake.clear()
    await slack.event({"type": "channel_shared", "channel": "C_ACME2", "connected_team_id": "T_CUST"},
                      event_id="EvShare2")
    left = json.dumps([v for (ch, _), v in slack.fake.messages.items() if ch == "C_ACME2"])
    assert "swordfish" not in left and "public hello" in left
    assert len(slack.fake.of("chat.delete")) == 1 and len(slack.fake.of("chat.update")) == 1


async def test_cards_posted_before_posts_were_recorded_are_redacted_too(slack):
    await slack.slash("/ticket", "5002", channel="C_OLD")
    globex = await _ticket(slack, 5002)
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:  # as if posted by an earlier version
        for p in (await s.exec(select(ChatPost))).all():
            await s.delete(p)
    thread = await _thread(slack, globex, "C_OLD")
    slack.fake.shared_channels.add("C_OLD")
    slack.fake.clear()
    await slack.slash("/deskbridge", "bind customer ACME shared", user=ADMIN, channel="C_OLD")
    assert [c.args["ts"] for c in slack.fake.of("chat.delete")] == [thread.message_ts]


def test_the_redaction_rule():
    internal = ChannelInfo(customer_id=1, visibility="tech")
    shared_a = ChannelInfo(customer_id=1, visibility="customer")
    shared_unbound = ChannelInfo(visibility="customer")
    assert redaction_for(internal, customer_id=2, kind="note", audience="tech") is None
    assert redaction_for(shared_a, customer_id=2, kind="note", audience="customer") == DELETE
    assert redaction_for(shared_a, customer_id=1, kind="note", audience="tech") == DELETE
    assert redaction_for(shared_a, customer_id=1, kind="note", audience="customer") is None
    assert redaction_for(shared_a, customer_id=1, kind="card", audience="tech") == CUSTOMER_CARD
    assert redaction_for(shared_a, customer_id=1, kind="sla", audience="tech") == DELETE
    assert redaction_for(shared_unbound, customer_id=1, kind="card", audience="customer") == DELETE
