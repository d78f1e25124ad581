"""End users in a customer channel: the rules (who, where, which mode), the ticket under the channel's
customer with their words in full, contact matching, and one ticket per message."""

from __future__ import annotations

import pytest
from sqlmodel import select

from core.context import Actor
from core.errors import InvalidInput, PermissionDenied
from core.intake.requests import EndUserRequests, subject_of
from core.workspaces import WorkspaceService
from store.db import Scope
from store.enums import EntryKind, Origin
from store.tables import Contact, Customer, TimelineEntry


@pytest.fixture
async def req(intake):
    async with intake.db.write(Scope.workspace(intake.ws)) as s:
        acme = (await s.exec(select(Customer).where(Customer.identifier == "ACME"))).one()
        s.add(Contact(workspace_id=intake.ws, customer_id=acme.id, name="Ann Lee", email="ann@acme.example"))
    intake.acme = acme.id
    intake.requests = EndUserRequests(intake.db, tickets=intake.tickets)
    intake.user = Actor(workspace_id=intake.ws, origin=Origin.SLACK, display="slack:U9 (Ann)", is_member=False,
                        customer_scope_id=acme.id)
    return intake


async def _internal_notes(req, ticket_id: int) -> list[str]:
    async with req.db.read(Scope.workspace(req.ws)) as s:
        return [e.body for e in (await s.exec(select(TimelineEntry).where(
            TimelineEntry.ticket_id == ticket_id, TimelineEntry.kind == EntryKind.NOTE_INTERNAL))).all()]


async def test_who_and_where_decide_and_the_workspace_picks_the_mode(req, tech):
    r, user = req.requests, req.user
    assert (await r.on_channel_message(user, customer_id=req.acme, text="My VPN is down", in_thread=False)).kind == "offer"
    for kw in ({"in_thread": True}, {"from_bot": True, "in_thread": False}):
        assert (await r.on_channel_message(user, customer_id=req.acme, text="hi", **kw)).kind == "ignore"
    assert (await r.on_channel_message(user, customer_id=None, text="hi", in_thread=False)).kind == "ignore"
    assert (await r.on_channel_message(tech, customer_id=req.acme, text="hi", in_thread=False)).kind == "ignore"
    assert (await r.on_channel_message(user, customer_id=req.acme, text="  ", in_thread=False)).kind == "ignore"
    ws = WorkspaceService(req.db)
    await ws.set_option(req.ws, "end_user_requests", "create")
    assert (await r.on_channel_message(user, customer_id=req.acme, text="help", in_thread=False)).kind == "create"
    await ws.set_option(req.ws, "end_user_requests", "off")
    assert (await r.on_channel_message(user, customer_id=req.acme, text="help", in_thread=False)).kind == "ignore"
    with pytest.raises(InvalidInput, match="offer, create, off"):
        await ws.set_option(req.ws, "end_user_requests", "sometimes")


async def test_opening_uses_the_channels_customer_keeps_every_word_and_happens_once(req):
    words = "Outlook keeps asking for my password since this morning, every five minutes or so, and " \
            "I cannot send anything to our customers which is a real problem today\nSecond line of detail."
    opened = await req.requests.open(req.user, words, message_key="C1:1700.1", email="ANN@acme.example", name="Ann")
    [t] = await req.tickets_()
    assert t.id == opened.ticket_id and t.customer_id == req.acme and t.contact_id is not None and opened.contact_known
    assert t.subject == opened.subject and t.subject.endswith("…") and len(t.subject) <= 120
    assert t.description == words  # their words only: who asked is an internal note
    assert await _internal_notes(req, t.id) == ["Asked in chat by Ann <ANN@acme.example>."]
    again = await req.requests.open(req.user, words, message_key="C1:1700.1", email="ann@acme.example", name="Ann")
    assert again.again and again.ticket_id is None and len(await req.tickets_()) == 1


async def test_unknown_people_still_get_help_and_a_technician_is_asked_to_confirm(req):
    opened = await req.requests.open(req.user, "Printer offline", message_key="C1:2", email="temp@gmail.example",
                                     name="Temp")
    [t] = await req.tickets_()
    assert not opened.contact_known and t.contact_id is None and t.customer_id == req.acme
    assert t.description == "Printer offline"
    [note] = await _internal_notes(req, t.id)
    assert "not a known contact of this customer: confirm the contact" in note


async def test_only_end_users_of_a_customer_channel_open_tickets_this_way(req, tech):
    with pytest.raises(PermissionDenied):
        await req.requests.open(tech, "x", message_key="k", email=None, name=None)
    unbound = Actor(workspace_id=req.ws, origin=Origin.SLACK, is_member=False, customer_scope_id=None)
    with pytest.raises(PermissionDenied):
        await req.requests.open(unbound, "x", message_key="k2", email=None, name=None)
    with pytest.raises(InvalidInput):
        await req.requests.open(req.user, "   ", message_key="k3", email=None, name=None)


def test_subject_is_the_first_line_cut_on_a_word():
    assert subject_of("\n\nVPN down\nmore") == "VPN down"
    long = "word " * 40
    assert subject_of(long).endswith("…") and len(subject_of(long)) <= 120 and "wor…" not in subject_of(long)


async def test_past_the_hourly_limit_words_join_their_open_ticket_or_are_held_never_lost(req):
    await WorkspaceService(req.db).set_option(req.ws, "end_user_requests_per_hour", "2")
    requests = EndUserRequests(req.db, tickets=req.tickets, clock=req.clock)
    ask = dict(email="ann@acme.example", name="Ann", user_key="slack:T1:U9")
    first = await requests.open(req.user, "VPN down", message_key="C1:1", **ask)
    second = await requests.open(req.user, "Printer jammed", message_key="C1:2", **ask)
    third = await requests.open(req.user, "And now Outlook too", message_key="C1:3", **ask)
    assert [first.outcome, second.outcome] == ["opened", "opened"]
    assert third.outcome == "added" and third.ticket_id == second.ticket_id and third.limit == 2
    assert len(await req.tickets_()) == 2
    assert "And now Outlook too" in await req.notes(second.ticket_id)  # their reply, word for word
    others = await requests.open(req.user, "Someone else", message_key="C1:4", email=None, name="Bo",
                                 user_key="slack:T1:U10")  # the limit is per person
    assert others.outcome == "opened"
    await req.tickets.change_status(Actor.system(req.ws), f"id:{first.ticket_id}", "resolved")
    await req.tickets.change_status(Actor.system(req.ws), f"id:{second.ticket_id}", "resolved")
    held = await requests.open(req.user, "Still broken", message_key="C1:5", **ask)
    assert held.outcome == "held" and held.ticket_id is None
    [kept] = await requests.held(req.ws)
    assert kept.text == "Still broken" and kept.customer_id == req.acme and kept.user_key == "slack:T1:U9"
    req.clock.advance(hours=1, seconds=1)  # an hour later they may open tickets again
    assert (await requests.open(req.user, "New issue", message_key="C1:6", **ask)).outcome == "opened"
    again = await requests.open(req.user, "New issue", message_key="C1:6", **ask)
    assert again.again and len(await req.tickets_()) == 4


async def test_the_limit_is_a_whole_number_setting(req):
    ws = WorkspaceService(req.db)
    with pytest.raises(InvalidInput, match="whole number"):
        await ws.set_option(req.ws, "end_user_requests_per_hour", "lots")
    assert (await ws.set_option(req.ws, "end_user_requests_per_hour", "0"))["end_user_requests_per_hour"] == 0
    requests = EndUserRequests(req.db, tickets=req.tickets, clock=req.clock)
    outcomes = [(await requests.open(req.user, f"issue {i}", message_key=f"k{i}", email=None, name=None,
                                     user_key="slack:T1:U9")).outcome for i in range(7)]
    assert outcomes == ["opened"] * 7  # 0: no limit
