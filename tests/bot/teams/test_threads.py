"""Ticket threads both ways: a technician's reply in a ticket card's reply chain is written to the PSA; new
PSA notes are posted into the chain, by the same visibility rules as Slack (core.chat); nothing echoes."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from core.notify import NoteAdded, SlaWarningEvent, TicketCreated, WriteDead, WriteDelivered
from store.db import Scope
from store.tables import Member, OutboxOp, Ticket
from tests.bot.teams.conftest import CHANNEL, STRANGER, text_of


async def open_thread(h, number: int = 5001) -> tuple[str, int]:
    await h.say(f"ticket {number}")
    root = h.fake.of("create")[-1]
    aid = next(reversed(h.fake.conversations[CHANNEL]))
    assert root.conversation_id == CHANNEL
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        tid = (await s.exec(sa.select(Ticket.id).where(Ticket.number == number))).scalar_one()
    return f"{CHANNEL};messageid={aid}", tid


async def notes(h) -> list[dict]:
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        ops = (await s.exec(sa.select(OutboxOp).where(OutboxOp.kind == "add_note").order_by(OutboxOp.id))).scalars()
        return [op.payload for op in ops]


def in_thread(h, thread: str) -> list[dict]:
    return [c.body for c in h.fake.calls if c.op == "create" and c.conversation_id == thread]


async def psa_note(h, tid: int, visibility: str, body: str) -> None:
    await h.c.notifier.notify(NoteAdded(workspace_id=h.ws, ticket_id=tid, ticket_number=5001, origin="psa",
                                        occurred_at=datetime.now(UTC), entry_id=1, visibility=visibility,
                                        author_name="Pat PSA", body=body, source=None))
    await h.settle()


async def make_admin(h) -> None:
    async with h.c.db.write(Scope.workspace(h.ws)) as s:
        (await s.get(Member, h.setup.member_id)).is_admin = True
    h.c.chat.invalidate()


async def test_a_reply_in_the_thread_becomes_an_internal_note_exactly_as_written(teams):
    thread, _ = await open_thread(teams)
    # Teams sends HTML: typed characters escaped, formatting as tags, other people's mentions as <at>.
    html = "Called the user &lt;3 — waiting on <b>vendor</b> &amp; asked <at>Ana Tech</at>"
    await teams.say(html, conversation=thread)
    (note,) = await notes(teams)
    assert note["text"] == "Called the user <3 — waiting on vendor & asked @Ana Tech"  # what the sender saw
    assert note["visibility"] == "internal"
    posted = in_thread(teams, thread)
    assert len(posted) == 1 and "Internal note" in posted[0]["text"]  # the confirmation, not an echo
    await teams.say("!public Fixed, please try again", conversation=thread)
    last = (await notes(teams))[-1]
    assert (last["text"], last["visibility"]) == ("Fixed, please try again", "public")


async def test_thread_time_and_card_refresh(teams):
    thread, _ = await open_thread(teams)
    await teams.say("!time 30m replaced the PSU", conversation=thread)
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        kinds = [k for (k,) in (await s.exec(sa.select(OutboxOp.kind))).all()]
    assert kinds == ["add_time_entry"]
    assert teams.fake.of("update"), "the ticket card was redrawn after the write"


async def test_psa_notes_appear_in_the_thread_as_plain_text(teams):
    thread, tid = await open_thread(teams)
    await psa_note(teams, tid, "public", "We replaced the <router> **today**")
    (post,) = in_thread(teams, thread)
    assert post["textFormat"] == "plain"
    assert post["text"].endswith("\n\nWe replaced the <router> **today**")
    assert "Pat PSA" in post["text"] and "from the PSA" in post["text"]


async def test_a_note_written_in_the_thread_is_not_echoed_there(teams):
    thread, tid = await open_thread(teams)
    root = thread.split(";messageid=")[1]
    await teams.c.notifier.notify(NoteAdded(workspace_id=teams.ws, ticket_id=tid, ticket_number=5001,
                                            origin="teams", occurred_at=datetime.now(UTC), entry_id=2,
                                            visibility="internal", author_name="Bob", body="mine",
                                            source=f"teams:{CHANNEL}:{root}"))
    await teams.settle()
    assert in_thread(teams, thread) == []


async def test_a_channel_the_customer_reads_gets_public_notes_only(teams):
    await make_admin(teams)
    await teams.say("bind customer ACME shared")
    assert "customer's people read this channel" in teams.last_text()
    thread, tid = await open_thread(teams)
    await psa_note(teams, tid, "internal", "internal: customer is difficult")
    await psa_note(teams, tid, "public", "Your VPN is fixed.")
    texts = [p["text"] for p in in_thread(teams, thread)]
    assert len(texts) == 1 and "Your VPN is fixed." in texts[0]


async def test_a_channel_bound_to_another_customer_gets_nothing_of_the_ticket(teams):
    thread, tid = await open_thread(teams)  # posted while unbound
    await make_admin(teams)
    await teams.say("bind customer GLOBEX")
    await psa_note(teams, tid, "public", "Acme's business")
    assert in_thread(teams, thread) == []
    assert "5001" not in str(teams.fake.of("update")[-1:])  # and its card is not redrawn there either


async def test_a_customer_writing_in_a_customer_thread_writes_nothing(teams):
    await make_admin(teams)
    await teams.say("bind customer ACME")
    thread, _ = await open_thread(teams)
    await teams.say("is it fixed yet?", conversation=thread, user=STRANGER)
    assert await notes(teams) == []


async def test_a_dead_write_is_told_in_tech_threads_only(teams):
    thread, tid = await open_thread(teams)
    await teams.c.notifier.notify(WriteDead(workspace_id=teams.ws, ticket_id=tid, ticket_number=5001, origin="psa",
                                            occurred_at=datetime.now(UTC), op_id=42, kind="add_note",
                                            error="Status 'Closed' needs a resolution"))
    await teams.settle()
    (post,) = in_thread(teams, thread)
    assert "could not be delivered" in post["text"] and "outbox redrive 42" in post["text"]


async def test_delivery_redraws_the_card_in_place(teams):
    thread, tid = await open_thread(teams)
    root = thread.split(";messageid=")[1]
    teams.fake.clear()
    await teams.c.notifier.notify(WriteDelivered(workspace_id=teams.ws, ticket_id=tid, ticket_number=5001,
                                                 origin="psa", occurred_at=datetime.now(UTC), op_id=1,
                                                 kind="add_note"))
    await teams.settle()
    (update,) = teams.fake.of("update")
    assert update.conversation_id == CHANNEL and update.activity_id == root
    assert "#5001 VPN down" in text_of(update.body)


async def test_new_tickets_are_dispatched_once_and_sla_warnings_posted(teams):
    await make_admin(teams)
    await teams.say("bind dispatch")
    await teams.say("bind sla")
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        tid = (await s.exec(sa.select(Ticket.id).where(Ticket.number == 5002))).scalar_one()
    teams.fake.clear()
    created = TicketCreated(workspace_id=teams.ws, ticket_id=tid, ticket_number=5002, origin="psa",
                            occurred_at=datetime.now(UTC), subject="Printer jammed")
    await teams.c.notifier.notify(created)
    await teams.c.notifier.notify(created)
    await teams.settle()
    posts = [c for c in teams.fake.of("create") if c.conversation_id == CHANNEL]
    assert len(posts) == 1 and "#5002 Printer jammed" in text_of(posts[0].body)
    root = next(reversed(teams.fake.conversations[CHANNEL]))
    assert await teams.c.chat.ticket_for_thread(teams.ws, "teams", CHANNEL, root) == tid
    await teams.c.notifier.notify(SlaWarningEvent(
        workspace_id=teams.ws, ticket_id=tid, ticket_number=5002, origin="system", occurred_at=datetime.now(UTC),
        metric="first_response", threshold=90, remaining_s=600, used_pct=91, due_at=None,
        customer_id=teams.setup.other_customer_id, subject="Printer jammed", priority="low"))
    await teams.settle()
    sla = teams.fake.of("create")[-1]
    assert sla.conversation_id == CHANNEL and "SLA warning (91% used)" in text_of(sla.body)


async def test_no_sla_warning_in_a_channel_the_customer_reads(teams):
    await make_admin(teams)
    await teams.say("bind customer ACME shared")
    await teams.say("bind sla")
    teams.fake.clear()
    await teams.c.notifier.notify(SlaWarningEvent(
        workspace_id=teams.ws, ticket_id=None, ticket_number=5001, origin="system", occurred_at=datetime.now(UTC),
        metric="resolution", threshold=100, remaining_s=-60, due_at=None, customer_id=teams.setup.customer_id,
        subject="VPN down", priority="high"))
    await teams.settle()
    assert teams.fake.of("create") == []


def shared(body: dict) -> dict:
    body["channelData"]["channel"]["membershipType"] = "shared"
    return body


async def test_a_shared_channel_is_treated_as_customer_read(teams):
    await teams.send(shared(teams.activity("ticket 5001")))
    assert "cannot be shown in this channel" in teams.last_text()  # unbound and read by outsiders
    await make_admin(teams)
    await teams.send(shared(teams.activity("bind customer ACME")))
    assert "customer's people read this channel" in teams.last_text()
    await teams.send(shared(teams.activity("ticket 5001")))
    thread = f"{CHANNEL};messageid={next(reversed(teams.fake.conversations[CHANNEL]))}"
    card_text = text_of(teams.fake.of("create")[-1].body)
    assert "#5001 VPN down" in card_text and "SLA" not in card_text  # the customer's view
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        tid = (await s.exec(sa.select(Ticket.id).where(Ticket.number == 5001))).scalar_one()
    await psa_note(teams, tid, "internal", "internal only")
    assert in_thread(teams, thread) == []


async def test_a_customers_words_in_their_shared_thread_become_their_public_reply(teams):
    await make_admin(teams)
    await teams.say("bind customer ACME shared")
    thread, _ = await open_thread(teams)
    await teams.say("Still broken &amp; the printer too", conversation=thread, user=STRANGER)
    (note,) = await notes(teams)
    assert note["text"] == "Still broken & the printer too" and note["visibility"] == "public"
    assert not note.get("email_contact")  # they read it in Teams already: not mailed back to them
