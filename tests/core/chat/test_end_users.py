"""End users beyond their customer's channel (core/chat/end_users.py): a contact recognised by verified
e-mail acts for their customer only; a DM becomes a channel their customer reads; their thread message is
their public reply on their customer's tickets wherever the thread is; "mine" lists their own tickets only
(real SQLite/PostgreSQL, the composition root's services)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.main import build
from bot.settings import Settings
from core.chat import ChatUser, grammar
from core.context import Actor
from core.errors import PermissionDenied
from store.crypto import generate_key
from store.db import Scope
from store.enums import Origin
from store.tables import ChannelBinding, Contact, TimelineEntry


@pytest.fixture
async def container(db_url, tmp_path, workspace_id):  # type: ignore[no-untyped-def]
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k"))
    c.default_workspace_id = workspace_id
    c.chat.invalidate()
    yield c
    await c.aclose()


@pytest.fixture
async def people(container, db, workspace_id):  # type: ignore[no-untyped-def]
    d = container.directory
    acme = await d.add_customer(workspace_id, identifier="ACME", name="Acme Corp")
    globex = await d.add_customer(workspace_id, identifier="GLOBEX", name="Globex")
    async with db.write(Scope.workspace(workspace_id)) as s:
        ann = Contact(workspace_id=workspace_id, customer_id=acme.id, name="Ann Lee", email="Ann@Acme.example")
        bo = Contact(workspace_id=workspace_id, customer_id=acme.id, name="Bo Colleague", email="bo@acme.example")
        twice = [Contact(workspace_id=workspace_id, customer_id=cid, name="Sam Both", email="sam@both.example")
                 for cid in (acme.id, globex.id)]
        s.add_all([ann, bo, *twice])
        await s.flush()
        ids = {"ann": ann.id, "bo": bo.id}
    system = Actor(workspace_id=workspace_id, origin=Origin.API, display="api")
    tickets = {}
    for name, customer, contact in (("ann1", acme.id, ids["ann"]), ("ann2", acme.id, ids["ann"]),
                                    ("bo", acme.id, ids["bo"]), ("globex", globex.id, None)):
        detail = await container.tickets.create(system, subject=f"{name} ticket", customer_id=customer,
                                                contact_id=contact)
        tickets[name] = detail.summary.id
    return {"acme": acme.id, "globex": globex.id, "tickets": tickets}


def _user(user_id: str = "U_ANN", *, channel: str = "D_ANN", is_dm: bool = True) -> ChatUser:
    return ChatUser(platform="slack", team_id="T1", user_id=user_id, channel_id=channel, is_dm=is_dm,
                    user_team_id="T_ACME")


async def test_a_contact_by_email_acts_for_their_customer_and_their_dm_becomes_a_customer_channel(
        container, people, db, workspace_id):  # type: ignore[no-untyped-def]
    chat = container.chat
    with pytest.raises(PermissionDenied):  # nobody Deskbridge knows, in a DM: refused as before
        await chat.actor_for(workspace_id, _user())
    actor, info = await chat.end_user_actor(workspace_id, _user(), "ann@acme.EXAMPLE")
    assert not actor.is_member and actor.customer_scope_id == people["acme"]
    assert info.customer_id == people["acme"] and info.visibility == "customer"
    async with db.read(Scope.workspace(workspace_id)) as s:
        [binding] = (await s.exec(select(ChannelBinding))).all()
    assert (binding.channel_id, binding.kind, binding.visibility) == ("D_ANN", "customer", "customer")
    again, info2 = await chat.actor_for(workspace_id, _user())  # from now on the DM is Acme's, as any channel
    assert again.customer_scope_id == people["acme"] and not again.is_member and info2 == info
    for email in ("sam@both.example", "nobody@acme.example", None):  # two customers, or none: nobody
        with pytest.raises(PermissionDenied) as err:
            await chat.end_user_actor(workspace_id, _user("U_X", channel="D_X"), email)
        assert "support channel" in (err.value.hint or "")
    _, unbound = await chat.end_user_actor(workspace_id, _user(channel="C_INTERNAL", is_dm=False), "ann@acme.example")
    assert unbound.customer_id is None  # a channel is never bound by an end user, only their own DM


async def test_mine_lists_only_the_contacts_own_tickets(container, people, workspace_id):  # type: ignore[no-untyped-def]
    user = _user()
    actor, info = await container.chat.end_user_actor(workspace_id, user, "ann@acme.example")
    runner = container.chat_commands
    mine = await runner.run(actor, user, info, grammar.parse("/tickets", "mine"), verified_email="ann@acme.example")
    subjects = sorted(r.subject for r in mine.rows)
    assert subjects == ["ann1 ticket", "ann2 ticket"] and mine.title == "Your tickets"
    assert all(r.sla_remaining_s is None for r in mine.rows)  # the customer's view: no SLA column
    company = await runner.run(actor, user, info, grammar.parse("/tickets", ""), verified_email="ann@acme.example")
    assert sorted(r.subject for r in company.rows) == ["ann1 ticket", "ann2 ticket", "bo ticket"]  # never Globex's
    with pytest.raises(Exception, match="e-mail could not be read"):
        await runner.run(actor, user, info, grammar.parse("/tickets", "mine"), verified_email=None)


async def test_a_contacts_thread_message_is_their_reply_on_their_customers_ticket_wherever_the_thread_is(
        container, people, db, workspace_id):  # type: ignore[no-untyped-def]
    user = _user(channel="C_INTERNAL", is_dm=False)
    actor, _ = await container.chat.end_user_actor(workspace_id, user, "ann@acme.example")
    runner, t = container.chat_commands, people["tickets"]
    done = await runner.thread_message(actor, t["bo"], "It works again, thanks!", source="slack:C_INTERNAL:1.1",
                                       author_email="ann@acme.example", as_contact=True)
    assert done is not None and done.view is not None and done.view.audience == "customer"
    assert "Your reply was added" in (done.confirmation or "")
    async with db.read(Scope.workspace(workspace_id)) as s:
        [entry] = (await s.exec(select(TimelineEntry).where(TimelineEntry.ticket_id == t["bo"],
                                                            TimelineEntry.kind == "note_public"))).all()
    assert entry.body == "It works again, thanks!" and entry.author_name.startswith("slack:U_ANN")
    other = await runner.thread_message(actor, t["globex"], "hello?", source="slack:C_INTERNAL:2.2",
                                        author_email="ann@acme.example", as_contact=True)
    assert other is None  # another customer's ticket: not theirs to write to
    not_verified = await runner.thread_message(actor, t["bo"], "x", source="slack:C_INTERNAL:1.1")
    assert not_verified is None  # without the e-mail check (and no customer reading the channel): chatter
