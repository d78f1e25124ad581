"""A customer's contact beyond their company's channel, through the real bolt app and the fake Slack API:
a DM with the bot opens a ticket like the customer channel does (and never shows an internal note), their
reply in any thread of their company's ticket is their public reply, `/tickets mine` lists their own
tickets only, someone who is no contact is told whom to ask, and past the hourly limit nothing is lost."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel import select

from core.notify import NoteAdded
from store.db import Scope
from store.tables import ChannelBinding, ChatLink, Contact, Ticket, TimelineEntry
from tests.bot.slack.conftest import STRANGER

DM = "D_STRANGER"
TS = "1800000100.000100"


async def _contact(slack) -> int:
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:
        c = Contact(workspace_id=slack.ws, customer_id=slack.setup.customer_id, name="Stranger",
                    email="someone@customer.example", external_id="900", connection_id=slack.setup.connection_id)
        s.add(c)
        await s.flush()
        return int(c.id)  # type: ignore[arg-type]


def _dm(text: str, ts: str = TS, user: str = STRANGER, **extra) -> dict:
    return {"type": "message", "channel": DM, "channel_type": "im", "user": user, "text": text, "ts": ts, **extra}


async def _tickets(slack) -> list[Ticket]:
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        return list((await s.exec(select(Ticket).where(Ticket.source == "slack").order_by(Ticket.id))).all())


async def _public_notes(slack, ticket_id: int) -> list[str]:
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        rows = (await s.exec(select(TimelineEntry).where(TimelineEntry.ticket_id == ticket_id,
                                                         TimelineEntry.kind == "note_public"))).all()
    return [r.body for r in rows]


async def _click_offer(slack) -> None:
    [offer] = slack.fake.of("chat.postEphemeral")
    blocks = offer.args["blocks"] if isinstance(offer.args["blocks"], list) else json.loads(offer.args["blocks"])
    button = blocks[1]["elements"][0]
    payload = slack.action_payload("x", button["value"], user=STRANGER, channel=DM)
    payload["actions"][0]["action_id"] = button["action_id"]
    await slack.interactive(payload)
    await slack.settle()


async def test_a_contacts_dm_opens_a_ticket_and_the_dm_then_follows_the_customer_rules(slack):
    contact_id = await _contact(slack)
    await slack.event(_dm("The VPN client crashes on start"), event_id="EvDm1")
    await slack.settle()
    await _click_offer(slack)
    [ticket] = await _tickets(slack)
    assert ticket.customer_id == slack.setup.customer_id and ticket.contact_id == contact_id
    assert ticket.description.startswith("The VPN client crashes on start")
    cards = [c for c in slack.fake.of("chat.postMessage") if c.args["channel"] == DM and c.args.get("thread_ts") == TS]
    assert len(cards) == 1
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        [binding] = (await s.exec(select(ChannelBinding).where(ChannelBinding.channel_id == DM))).all()
    assert binding.customer_id == slack.setup.customer_id and binding.visibility == "customer"

    slack.fake.clear()
    await slack.event(_dm("It also happens on my home wifi", ts="1800000101.1", thread_ts=TS), event_id="EvDm2")
    await slack.settle()
    assert await _public_notes(slack, ticket.id) == ["It also happens on my home wifi"]

    slack.fake.clear()  # the technicians' notes: the public one reaches the DM thread, the internal one never
    for visibility, body in (("internal", "User is on the old client, probably PEBKAC"),
                             ("public", "Please update to version 9.2")):
        await slack.c.notifier.notify(NoteAdded(
            workspace_id=slack.ws, ticket_id=ticket.id, ticket_number=ticket.number, origin="psa",
            occurred_at=datetime.now(UTC), entry_id=1, visibility=visibility, author_name="Carla", body=body))
    await slack.settle()
    posted = json.dumps([c.args for c in slack.fake.of("chat.postMessage") if c.args["channel"] == DM])
    assert "Please update to version 9.2" in posted and "PEBKAC" not in posted


async def test_someone_who_is_no_contact_is_told_whom_to_ask_in_the_dm(slack):
    await slack.event(_dm("hello, my printer is broken"), event_id="EvDm3")
    await slack.settle()
    [said] = [c for c in slack.fake.of("chat.postMessage") if c.args["channel"] == DM]
    assert "not taken" in said.args["text"] and "support channel" in said.args["text"]
    assert await _tickets(slack) == []


async def test_a_contacts_reply_in_a_technicians_thread_of_their_companys_ticket_is_their_reply(slack):
    await _contact(slack)
    await slack.slash("/ticket", "5001", channel="C_TECH")  # ACME's ticket, posted by Bob in an internal channel
    await slack.slash("/ticket", "5002", channel="C_TECH")  # GLOBEX's
    await slack.settle()
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        acme = (await s.exec(select(Ticket).where(Ticket.number == 5001))).one()
        globex = (await s.exec(select(Ticket).where(Ticket.number == 5002))).one()
        links = {link.ticket_id: link.message_ts for link in (await s.exec(select(ChatLink).where(
            ChatLink.channel_id == "C_TECH"))).all()}
    acme_ts, globex_ts = links[acme.id], links[globex.id]
    for n, thread in enumerate((acme_ts, globex_ts)):
        await slack.event({"type": "message", "channel": "C_TECH", "channel_type": "channel", "user": STRANGER,
                           "text": f"Any news? ({n})", "ts": f"1800000200.{n}", "thread_ts": thread},
                          event_id=f"EvTh{n}")
    await slack.settle()
    assert await _public_notes(slack, acme.id) == ["Any news? (0)"]
    assert await _public_notes(slack, globex.id) == []  # another customer's ticket: not theirs


async def test_mine_in_the_dm_lists_only_the_contacts_tickets(slack):
    await _contact(slack)
    await slack.event(_dm("Laptop fan is loud"), event_id="EvDm4")
    await slack.settle()
    await _click_offer(slack)
    slack.fake.clear()
    await slack.slash("/tickets", "mine", user=STRANGER, channel=DM)
    shown = json.dumps(slack.fake.webhooks[-1])
    assert "Laptop fan is loud" in shown and "VPN down" not in shown and "Printer jammed" not in shown


async def test_past_the_hourly_limit_the_contact_is_told_where_their_words_went(slack):
    await _contact(slack)
    await slack.c.workspaces.set_option(slack.ws, "end_user_requests", "create")
    await slack.c.workspaces.set_option(slack.ws, "end_user_requests_per_hour", "1")
    await slack.event(_dm("Outlook will not start"), event_id="EvL1")
    await slack.settle()
    slack.fake.clear()
    await slack.event(_dm("And Teams crashes too", ts="1800000300.1"), event_id="EvL2")
    await slack.settle()
    [ticket] = await _tickets(slack)
    assert await _public_notes(slack, ticket.id) == ["And Teams crashes too"]
    [told] = slack.fake.of("chat.postEphemeral")
    assert "added to" in told.args["text"] and "support line" in told.args["text"]
