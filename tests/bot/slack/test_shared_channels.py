"""Channels shared with another organisation (Slack Connect) are checked when posting, not only when bound:
a channel can be shared after it was bound, or never be bound at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel import select

from core.notify import NoteAdded, SlaWarningEvent
from store.db import Scope
from store.tables import ChatLink, Ticket
from tests.bot.slack.conftest import ADMIN, TECH


async def _ticket(h, number):
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return (await s.exec(select(Ticket).where(Ticket.number == number))).one()


async def _thread_of(h, channel):
    async with h.c.db.read(Scope.workspace(h.ws)) as s:
        return (await s.exec(select(ChatLink).where(ChatLink.channel_id == channel))).one()


def _note(h, t, visibility, body):
    return NoteAdded(workspace_id=h.ws, ticket_id=t.id, ticket_number=t.number, origin="psa",
                     occurred_at=datetime.now(UTC), entry_id=1, visibility=visibility, author_name="Carla (PSA)",
                     body=body)


async def test_no_ticket_card_in_a_shared_channel_that_is_not_bound(slack):
    slack.fake.shared_channels.add("C_CONNECT")
    await slack.slash("/ticket", "5002", channel="C_CONNECT")
    assert not [p for p in slack.fake.of("chat.postMessage") if p.args["channel"] == "C_CONNECT"]
    hook = slack.fake.webhooks[-1]  # the technician alone gets the card, with the reason
    assert hook["response_type"] == "ephemeral" and "shared with people outside" in json.dumps(hook["blocks"])
    assert "Printer jammed" in json.dumps(hook["blocks"])
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        assert (await s.exec(select(ChatLink))).all() == []  # no thread there


async def test_a_channel_slack_will_not_describe_is_treated_as_shared(slack):
    slack.fake.fail("conversations.info", error="channel_not_found")
    await slack.slash("/ticket", "5001", channel="C_UNKNOWN")
    assert not [p for p in slack.fake.of("chat.postMessage") if p.args["channel"] == "C_UNKNOWN"]
    assert "shared with people outside" in json.dumps(slack.fake.webhooks[-1]["blocks"])


async def test_a_bound_channel_shared_later_stops_getting_internal_content(slack):
    # bound as an internal ACME channel, a card posted: technicians see internal notes there
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME")
    await slack.slash("/ticket", "5001", channel="C_ACME")
    thread = await _thread_of(slack, "C_ACME")
    t = await _ticket(slack, 5001)
    await slack.c.notifier.notify(_note(slack, t, "internal", "Firewall password is hunter2"))
    await slack.settle()
    mirrored = [p.args["text"] for p in slack.fake.of("chat.postMessage") if p.args.get("thread_ts") == thread.message_ts]
    assert any("hunter2" in m for m in mirrored)
    # then an admin shares the channel with the customer through Slack Connect
    slack.fake.shared_channels.add("C_ACME")
    await slack.event({"type": "channel_shared", "channel": "C_ACME", "connected_team_id": "T_CUSTOMER"},
                      event_id="EvShared")
    slack.fake.clear()
    await slack.c.notifier.notify(_note(slack, t, "internal", "Second secret: swordfish"))
    await slack.c.notifier.notify(_note(slack, t, "public", "We are on it"))
    await slack.settle()
    posts = json.dumps([p.args for p in slack.fake.of("chat.postMessage")])
    assert "swordfish" not in posts and "We are on it" in posts
    card = slack.fake.of("chat.update")[-1].args  # the card is redrawn for the customer
    assert "Internal note" not in json.dumps(card["blocks"]) and "SLA" not in json.dumps(card["blocks"])
    # a technician's reply there is confirmed to them alone, not in the thread the customer reads
    slack.fake.clear()
    await slack.event({"type": "message", "channel": "C_ACME", "user": TECH, "text": "!public Rebooting now",
                       "ts": "1799999990.000100", "thread_ts": thread.message_ts}, event_id="EvSharedReply")
    assert not slack.fake.of("chat.postMessage")
    (eph,) = slack.fake.of("chat.postEphemeral")
    assert eph.args["user"] == TECH and "queued" in eph.args["text"]


async def test_an_sla_channel_shared_later_gets_no_sla_warnings(slack):
    await slack.slash("/deskbridge", "bind sla", user=ADMIN, channel="C_SLA")
    t = await _ticket(slack, 5001)
    now = datetime.now(UTC)

    def warning():
        return SlaWarningEvent(workspace_id=slack.ws, ticket_id=t.id, ticket_number=t.number, origin="system",
                               occurred_at=now, metric="resolution", threshold=90, remaining_s=300, due_at=now,
                               customer_id=t.customer_id, subject=t.subject, priority="high")

    await slack.c.notifier.notify(warning())
    await slack.settle()
    assert [p for p in slack.fake.of("chat.postMessage") if p.args["channel"] == "C_SLA"]
    slack.fake.shared_channels.add("C_SLA")
    await slack.event({"type": "channel_shared", "channel": "C_SLA"}, event_id="EvSlaShared")
    slack.fake.clear()
    await slack.c.notifier.notify(warning())
    await slack.settle()
    assert not [p for p in slack.fake.of("chat.postMessage") if p.args["channel"] == "C_SLA"]


async def test_a_reply_in_an_sla_warnings_thread_goes_to_the_ticket(slack):
    """The warning in the SLA channel takes replies for its ticket; the ticket's notes and card updates do not
    go into the warning's thread (it is not a card)."""
    from store.tables import OutboxOp

    await slack.slash("/deskbridge", "bind sla", user=ADMIN, channel="C_SLA2")
    t = await _ticket(slack, 5001)
    now = datetime.now(UTC)
    await slack.c.notifier.notify(SlaWarningEvent(
        workspace_id=slack.ws, ticket_id=t.id, ticket_number=t.number, origin="system", occurred_at=now,
        metric="resolution", threshold=90, remaining_s=300, due_at=now, customer_id=t.customer_id,
        subject=t.subject, priority="high", used_pct=91.0))
    await slack.settle()
    (warning,) = [p for p in slack.fake.of("chat.postMessage") if p.args["channel"] == "C_SLA2"]
    assert "91% used" in json.dumps(warning.args["blocks"])
    ts = next(ts for (ch, ts) in slack.fake.messages if ch == "C_SLA2")
    await slack.event({"type": "message", "channel": "C_SLA2", "user": TECH, "text": "calling them now",
                       "ts": "1799999990.000100", "thread_ts": ts}, event_id="EvSlaReply")
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        ops = (await s.exec(select(OutboxOp))).all()
    assert [(o.kind, o.ticket_id, o.payload["text"]) for o in ops] == [("add_note", t.id, "calling them now")]
    assert not [u for u in slack.fake.of("chat.update") if u.args["ts"] == ts]  # the warning stays a warning
    slack.fake.clear()
    await slack.c.notifier.notify(_note(slack, t, "public", "from the PSA"))
    await slack.settle()
    assert not [p for p in slack.fake.of("chat.postMessage") if p.args.get("thread_ts") == ts]


async def test_unbinding_a_shared_channel_keeps_its_threads_customer_only(slack):
    slack.fake.shared_channels.add("C_ACME_X")
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME_X")
    await slack.slash("/ticket", "5001", channel="C_ACME_X")
    thread = await _thread_of(slack, "C_ACME_X")
    await slack.slash("/deskbridge", "unbind", user=ADMIN, channel="C_ACME_X")
    slack.fake.clear()
    t = await _ticket(slack, 5001)
    await slack.c.notifier.notify(_note(slack, t, "internal", "internal after unbind"))
    await slack.settle()
    in_thread = [p for p in slack.fake.of("chat.postMessage") if p.args.get("thread_ts") == thread.message_ts]
    assert not in_thread


async def test_an_unlinked_colleague_is_told_why_their_thread_message_was_not_written(slack):
    """In a channel only the MSP reads, someone Deskbridge does not know is told how to link, and nothing is
    written. (In a channel the customer reads, their words are the customer's reply: see below.)"""
    from tests.bot.slack.conftest import STRANGER

    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME_INT")
    await slack.slash("/ticket", "5001", channel="C_ACME_INT")
    thread = await _thread_of(slack, "C_ACME_INT")
    slack.fake.clear()
    await slack.event({"type": "message", "channel": "C_ACME_INT", "user": STRANGER, "text": "I rebooted it",
                       "ts": "1799999980.000100", "thread_ts": thread.message_ts}, event_id="EvC_ACME_INT")
    told = slack.fake.of("chat.postEphemeral")
    assert told[0].args["user"] == STRANGER and "/deskbridge link" in told[0].args["text"]
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        from store.tables import OutboxOp

        assert (await s.exec(select(OutboxOp))).all() == []


async def test_a_customers_reply_in_their_channel_is_written_as_their_reply_and_resumes_the_ticket(slack):
    """Customer words are never dropped: in a channel bound to their company (and read by them), a
    customer's message in their ticket's thread becomes their public reply, word for word, attributed to
    their PSA contact (matched by e-mail), not mailed back to them; a ticket waiting on them goes back to in
    progress. They are told privately that it was added."""
    from store.enums import Stage
    from store.tables import Contact, OutboxOp
    from tests.bot.slack.conftest import STRANGER

    t = await _ticket(slack, 5001)
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:
        s.add(Contact(workspace_id=slack.ws, connection_id=t.connection_id, customer_id=t.customer_id,
                      external_id="77", name="Someone", email="Someone@Customer.example"))
        row = await s.get(Ticket, t.id)
        row.stage = Stage.WAITING.value
    slack.fake.shared_channels.add("C_ACME_EXT")
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME_EXT")
    await slack.slash("/ticket", "5001", channel="C_ACME_EXT")
    thread = await _thread_of(slack, "C_ACME_EXT")
    slack.fake.clear()
    await slack.event({"type": "message", "channel": "C_ACME_EXT", "user": STRANGER,
                       "text": "I rebooted it & it works <https://x.example/p|see photo>",
                       "ts": "1799999981.000100", "thread_ts": thread.message_ts}, event_id="EvCustReply")
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        ops = (await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all()
        stage = (await s.get(Ticket, t.id)).stage
    note = ops[0].payload
    assert note["kind"] == "add_note" and note["visibility"] == "public" and note["email_contact"] is False
    assert note["text"] == "I rebooted it & it works see photo (https://x.example/p)"
    assert note["author_contact_external_id"] == "77"
    assert stage == Stage.IN_PROGRESS.value and [o.kind for o in ops][1:] == ["update_ticket"]
    told = slack.fake.of("chat.postEphemeral")
    assert told and told[0].args["user"] == STRANGER and "added to the ticket" in told[0].args["text"]


async def test_another_customers_ticket_thread_takes_nothing_from_a_customer(slack):
    """A customer's message in a thread of a ticket outside their company's scope is not written."""
    from store.tables import OutboxOp
    from tests.bot.slack.conftest import STRANGER

    await slack.slash("/ticket", "5002", channel="C_ACME_EXT2")  # posted while the channel was internal
    thread = await _thread_of(slack, "C_ACME_EXT2")
    other = await _ticket(slack, 5002)
    slack.fake.shared_channels.add("C_ACME_EXT2")
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME_EXT2")
    acme = await _ticket(slack, 5001)
    assert other.customer_id != acme.customer_id
    await slack.event({"type": "message", "channel": "C_ACME_EXT2", "user": STRANGER, "text": "what about this",
                       "ts": "1799999982.000100", "thread_ts": thread.message_ts}, event_id="EvCustOther")
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        assert (await s.exec(select(OutboxOp))).all() == []


async def test_a_channel_bound_shared_by_hand_gets_only_what_customers_may_see(slack):
    """Customers invited as guests (not Slack Connect) are invisible to conversations.info: the admin says so."""
    await slack.slash("/deskbridge", "bind customer ACME shared", user=ADMIN, channel="C_GUESTS")
    assert "read this channel" in slack.fake.webhooks[-1]["text"]
    await slack.slash("/ticket", "5001", channel="C_GUESTS")
    card = next(p for p in slack.fake.of("chat.postMessage") if p.args["channel"] == "C_GUESTS").args
    assert "Reply" not in json.dumps(card["blocks"]) and "SLA" not in json.dumps(card["blocks"])
    thread = await _thread_of(slack, "C_GUESTS")
    t = await _ticket(slack, 5001)
    slack.fake.clear()
    await slack.c.notifier.notify(_note(slack, t, "internal", "root cause: our patch"))
    await slack.settle()
    assert not [p for p in slack.fake.of("chat.postMessage") if p.args.get("thread_ts") == thread.message_ts]


async def test_a_dead_write_in_a_channel_the_customer_reads_is_told_to_its_author_alone(slack):
    from core.notify import WriteDead
    from store.tables import OutboxOp

    await slack.slash("/deskbridge", "bind customer ACME shared", user=ADMIN, channel="C_GUESTS2")
    await slack.slash("/ticket", "5001", channel="C_GUESTS2")
    thread = await _thread_of(slack, "C_GUESTS2")
    await slack.event({"type": "message", "channel": "C_GUESTS2", "user": TECH, "text": "!public On it",
                       "ts": "1799999960.000100", "thread_ts": thread.message_ts}, event_id="EvDeadAuthor")
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        op = (await s.exec(select(OutboxOp))).one()
    t = await _ticket(slack, 5001)
    slack.fake.clear()
    await slack.c.notifier.notify(WriteDead(workspace_id=slack.ws, ticket_id=t.id, ticket_number=t.number,
                                            origin="system", occurred_at=datetime.now(UTC), op_id=op.id,
                                            kind="add_note", error="HTTP 400 note too long"))
    await slack.settle()
    assert not [p for p in slack.fake.of("chat.postMessage") if p.args.get("thread_ts") == thread.message_ts]
    (eph,) = slack.fake.of("chat.postEphemeral")
    assert eph.args["user"] == TECH and eph.args["thread_ts"] == thread.message_ts
    assert "Could not deliver" in eph.args["text"] and f"redrive {op.id}" in eph.args["text"]


async def test_in_a_thread_the_customer_reads_a_plain_message_is_a_public_reply(slack):
    from store.tables import OutboxOp

    await slack.slash("/deskbridge", "bind customer ACME shared", user=ADMIN, channel="C_GUESTS3")
    await slack.slash("/ticket", "5001", channel="C_GUESTS3")
    thread = await _thread_of(slack, "C_GUESTS3")
    for i, text in enumerate(("The fix is rolling out now", "!internal customer seems annoyed")):
        await slack.event({"type": "message", "channel": "C_GUESTS3", "user": TECH, "text": text,
                           "ts": f"179999995{i}.000100", "thread_ts": thread.message_ts}, event_id=f"EvPub{i}")
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        notes = [(o.payload["visibility"], o.payload["text"]) for o in (await s.exec(select(OutboxOp))).all()]
    # the customer has read the second message already: it is refused as an internal note, with the way out
    assert notes == [("public", "The fix is rolling out now")]
    told = [c.args["text"] for c in slack.fake.of("chat.postEphemeral")]
    assert "Public reply" in told[0]  # told privately which it was
    assert "cannot become an internal note" in told[1] and "Note button" in told[1]


async def test_a_reply_written_in_one_thread_appears_in_the_tickets_other_threads_without_echo(slack):
    await slack.slash("/deskbridge", "bind customer ACME shared", user=ADMIN, channel="C_CUST")
    for channel in ("C_TECH", "C_CUST", "C_TECH2"):
        await slack.slash("/ticket", "5001", channel=channel)
    tech, cust, tech2 = [await _thread_of(slack, c) for c in ("C_TECH", "C_CUST", "C_TECH2")]
    slack.fake.clear()
    await slack.event({"type": "message", "channel": "C_TECH", "user": TECH, "text": "!public New disk ordered",
                       "ts": "1799999940.000100", "thread_ts": tech.message_ts}, event_id="EvMirror1")
    await slack.event({"type": "message", "channel": "C_TECH", "user": TECH, "text": "vendor RMA 4411",
                       "ts": "1799999941.000100", "thread_ts": tech.message_ts}, event_id="EvMirror2")

    def said(thread):
        return " ".join(json.dumps(p.args.get("blocks")) for p in slack.fake.of("chat.postMessage")
                        if p.args.get("thread_ts") == thread.message_ts)

    assert "New disk ordered" in said(cust) and "vendor RMA" not in said(cust)  # the customer: public only
    assert "New disk ordered" in said(tech2) and "vendor RMA 4411" in said(tech2)
    assert "New disk ordered" not in said(tech) and "vendor RMA" not in said(tech)  # no echo (only confirmations)
    assert "Added in Deskbridge" in said(tech2)


async def test_an_unknown_answer_from_slack_never_makes_a_technicians_words_public(slack):
    """Posting treats "Slack would not say" as shared (safe); the meaning of a write does not: a rate-limited
    lookup must not turn a technician's aside into a public reply e-mailed to the customer."""
    from store.tables import OutboxOp

    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_INT")
    await slack.slash("/ticket", "5001", channel="C_INT")
    thread = await _thread_of(slack, "C_INT")
    slack.c.slack.shared.forget("C_INT")
    slack.fake.fail("conversations.info", error="ratelimited")
    await slack.event({"type": "message", "channel": "C_INT", "user": TECH, "text": "their DC password is weak",
                       "ts": "1799999930.000100", "thread_ts": thread.message_ts}, event_id="EvRL")
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        (op,) = (await s.exec(select(OutboxOp))).all()
    assert op.payload["visibility"] == "internal" and op.payload["email_contact"] is False


async def test_in_a_customer_read_thread_only_an_explicit_public_reply_emails_the_contact(slack):
    from store.tables import OutboxOp

    await slack.slash("/deskbridge", "bind customer ACME shared", user=ADMIN, channel="C_G4")
    await slack.slash("/ticket", "5001", channel="C_G4")
    thread = await _thread_of(slack, "C_G4")
    for i, text in enumerate(("looking at it now", "!public Fixed: please restart Outlook")):
        await slack.event({"type": "message", "channel": "C_G4", "user": TECH, "text": text,
                           "ts": f"179999992{i}.000100", "thread_ts": thread.message_ts}, event_id=f"EvMail{i}")
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        got = [(o.payload["visibility"], o.payload["email_contact"]) for o in (await s.exec(select(OutboxOp))).all()]
    assert got == [("public", False), ("public", True)]  # they read the first in Slack already


async def test_shared_is_only_for_customer_bindings_and_survives_a_rebind(slack):
    await slack.slash("/deskbridge", "bind dispatch shared", user=ADMIN, channel="C_D")
    assert "goes with a customer binding" in slack.fake.webhooks[-1]["text"]
    await slack.slash("/deskbridge", "bind customer ACME shared", user=ADMIN, channel="C_G5")
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_G5")  # `shared` forgotten
    info = await slack.c.chat.channel(slack.ws, "slack", "T0001", "C_G5")
    assert info.visibility == "customer"  # still: guests do not leave because the word was left out
    await slack.slash("/deskbridge", "bindings", user=ADMIN, channel="C_G5")  # an unlinked Slack admin may look
    assert "customer visibility" in slack.fake.webhooks[-1]["text"]


class _StubClient:
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = 0
        self.gate = None

    async def conversations_info(self, channel):
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return {"channel": answer}


async def test_shared_channels_org_shared_is_internal_and_failures_keep_the_last_answer():
    import asyncio

    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.slack_response import SlackResponse

    from bot.slack.channels import SharedChannels

    now = [0.0]
    sc = SharedChannels(clock=lambda: now[0])
    grid = _StubClient([{"is_shared": True, "is_ext_shared": False}])
    assert await sc.status(grid, "C_GRID") == (False, True)  # shared between the MSP's own workspaces only

    limited = SlackApiError("ratelimited", SlackResponse(client=None, http_verb="POST", api_url="", req_args={},
                                                          data={"ok": False, "error": "ratelimited"}, headers={},
                                                          status_code=429))
    client = _StubClient([{"is_ext_shared": False}, limited, limited])
    assert await sc.status(client, "C_X") == (False, True)
    now[0] += 1000  # the answer is stale; the re-check is rate limited
    assert await sc.status(client, "C_X") == (False, True)  # the last answer is kept, not flipped to shared
    fresh = SharedChannels(clock=lambda: now[0])
    assert await fresh.status(client, "C_X") == (True, False)  # never known: shared for posting, unknown

    racing = _StubClient([{"is_ext_shared": False}, {"is_ext_shared": True}])
    racing.gate = asyncio.Event()
    asked = [asyncio.ensure_future(sc.status(racing, "C_R")) for _ in range(3)]
    await asyncio.sleep(0)
    sc.forget("C_R")  # channel_shared arrives while the lookup is on its way
    racing.gate.set()
    assert [await a for a in asked] == [(False, True)] * 3 and racing.calls == 1  # one lookup for all three
    assert await sc.status(racing, "C_R") == (True, True)  # the answer from before forget() was not kept
