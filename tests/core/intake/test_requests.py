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
from store.enums import Origin
from store.tables import Contact, Customer


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
    assert t.description.startswith(words) and "Asked in chat by Ann <ANN@acme.example>." in t.description
    again = await req.requests.open(req.user, words, message_key="C1:1700.1", email="ann@acme.example", name="Ann")
    assert again.again and again.ticket_id is None and len(await req.tickets_()) == 1


async def test_unknown_people_still_get_help_and_a_technician_is_asked_to_confirm(req):
    opened = await req.requests.open(req.user, "Printer offline", message_key="C1:2", email="temp@gmail.example",
                                     name="Temp")
    [t] = await req.tickets_()
    assert not opened.contact_known and t.contact_id is None and t.customer_id == req.acme
    assert "not a known contact of this customer: confirm the contact" in t.description


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
