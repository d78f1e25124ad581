"""Microsoft 365 context in Teams, through the real Teams SDK app (signed invokes against the fake Bot Framework)
and the httpx-transport Graph fake: the Context button on a technician's card, the context card, activity, apps,
change user, a confirmed reset answered to the clicker only, and nothing in a customer channel."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.api.app import create_app
from bot.main import build
from bot.teams.cards import VERB
from core.context import Actor
from store.db import Scope
from store.tables import Contact, Customer, Member, OutboxOp, Ticket
from tests.bot.slack.conftest import seed_tickets
from tests.bot.teams.conftest import TECH, TENANT, TeamsHarness, teams_settings, text_of
from tests.bot.teams.test_commands import assert_valid_card, invoke
from tests.factories import psa_backed
from tests.fakes.graph import GRAPH, LOGIN, FakeGraph, seed_acme

M365 = "0b5d8f4e-1c2a-4c3b-9d8e-7f6a5b4c3d2e"


@pytest.fixture
async def teams(db, db_url, workspace_id, fake_bf, tmp_path):
    graph = FakeGraph()
    seed_acme(graph, M365)
    setup = await psa_backed(db, workspace_id)
    await seed_tickets(db, workspace_id, setup)
    async with db.write(Scope.workspace(workspace_id)) as s:
        jane = Contact(workspace_id=workspace_id, customer_id=setup.customer_id, name="Jane", email="jane@acme.example")
        s.add(jane)
        await s.flush()
        t = (await s.exec(select(Ticket).where(Ticket.number == 5001))).one()
        t.contact_id = jane.id
        s.add(t)
    container = build(teams_settings(db_url, tmp_path, fake_bf, m365_client_id=graph.client_id,
                                     m365_client_secret=graph.client_secret, m365_graph_url=GRAPH,
                                     m365_login_url=LOGIN), transport=graph.routed_transport())
    container.default_workspace_id = workspace_id
    async with db.read(Scope.workspace(workspace_id)) as s:
        acme = await s.get(Customer, setup.customer_id)
    await container.m365.connect(workspace_id, acme, M365)
    await container.directory.link_chat_user(workspace_id, setup.member_id, platform="teams", team_id=TENANT,
                                             user_id=TECH)
    await container.teams.start()
    h = TeamsHarness(create_app(container, start_background=False), container, fake_bf, workspace_id, setup)
    h.graph = graph  # type: ignore[attr-defined]
    yield h
    await h.settle()
    await h.http.aclose()
    await container.aclose()


def _actions(card) -> dict[str, dict]:
    found: dict[str, dict] = {}

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute":
                found.setdefault(node["data"]["action"] + ":" + str(node["data"].get("device", "")), node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(card)
    return found


async def _card(h, data) -> dict:
    _, resp = await invoke(h, data)
    assert resp.status_code == 200
    card = resp.json()["value"]
    assert_valid_card(card)
    return card


async def test_context_activity_apps_and_a_confirmed_reset(teams):
    ticket = await _card(teams, {"action": "open", "ref": "5001"})
    assert "context:" in _actions(ticket)
    ctx = await _card(teams, {"action": "context", "ref": "5001"})
    text = text_of({"value": ctx})
    assert "Jane Doe · jane@acme.example (the ticket's contact)" in text and "ACME-LT-2" in text
    assert "ctx_reset:" not in _actions(ctx)  # no quick-action role yet
    admin = Actor(workspace_id=teams.ws, origin=Actor.system(teams.ws).origin, display="admin", is_admin=True)
    await teams.c.quick_actions.grant(admin, teams.setup.member_id)
    ctx = await _card(teams, {"action": "context", "ref": "5001"})
    acts = _actions(ctx)
    activity = await _card(teams, acts["ctx_activity:"]["data"])
    assert "Recent sign-ins" in text_of({"value": activity}) and "Reset user password" in text_of({"value": activity})
    apps = await _card(teams, acts["ctx_apps:d-0"]["data"])
    assert "7-Zip 23.01" in text_of({"value": apps})
    _, refused = await invoke(teams, acts["ctx_reset:"]["data"])  # in a channel others may see the answer card
    assert "only in your own chat" in json.dumps(refused.json()) and "Temporary password" not in json.dumps(refused.json())

    async def personal(data):
        body = teams.activity(kind="invoke", name="adaptiveCard/action", ctype="personal", conversation="a:personal-bob",
                              value={"action": {"type": "Action.Execute", "verb": VERB, "data": data}, "trigger": "manual"})
        return body, await teams.send(body)

    _, resp = await personal(acts["ctx_reset:"]["data"])  # in the technician's own chat: first the confirmation
    confirm = resp.json()["value"]
    assert_valid_card(confirm)
    assert "Reset jane@acme.example's password?" in text_of({"value": confirm})
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        assert (await s.exec(select(OutboxOp).where(OutboxOp.kind == "tenant_action"))).all() == []
    yes = _actions(confirm)["ctx_reset:"]["data"]
    body, resp = await personal(yes)
    done = resp.json()["value"]
    assert_valid_card(done)
    pw = next(b["text"] for b in done["body"] if b["text"].startswith("Temporary password: ")).split(": ")[1]
    again = await teams.send(body)  # Teams redelivers the same invoke: the same op, no second password
    assert again.status_code == 200
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        ops = (await s.exec(select(OutboxOp).where(OutboxOp.kind == "tenant_action"))).all()
    assert len(ops) == 1 and pw not in json.dumps(ops[0].payload)
    await teams.settle()
    assert pw not in json.dumps(teams.fake.activities if hasattr(teams.fake, "activities") else teams.posted())
    await teams.c.outbox_worker.drain()
    assert teams.graph.tenants[M365].writes[0][2]["password"] == pw
    chosen = await _card(teams, {**_actions(ctx)["ctx_choose:"]["data"], "user": "carol@acme.example"})
    assert "Carol Poe" in text_of({"value": chosen}) and "chosen for this ticket" in text_of({"value": chosen})


async def test_device_activity_on_the_context_card(teams):
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:
        t = (await s.exec(select(Ticket).where(Ticket.number == 5001))).one()
        t.device_ref = "ACME-LT-1"
        s.add(t)
    ctx = await _card(teams, {"action": "context", "ref": "5001"})
    assert "ACME-LT-1 (this ticket's device)" in text_of({"value": ctx})
    activity = text_of({"value": await _card(teams, _actions(ctx)["ctx_activity:"]["data"])})
    assert "Last check-in 2026-12-02 10:00 UTC · enrolled 2026-01-05 09:00 UTC" in activity
    assert activity.split("Sign-ins from it:")[1].count("203.0.113.") == 3


async def test_nothing_in_a_customer_channel(teams):
    async with teams.c.db.write(Scope.workspace(teams.ws)) as s:
        bob = await s.get(Member, teams.setup.member_id)
        bob.is_admin = True
    teams.c.chat.invalidate()
    await teams.say("bind customer ACME")
    assert "bound to customer Acme Corp" in teams.last_text()
    ticket = await _card(teams, {"action": "open", "ref": "5001"})
    assert "context:" not in _actions(ticket)
    calls = len(teams.graph.calls)
    _, resp = await invoke(teams, {"action": "context", "ref": "5001"})
    assert "never in a customer channel" in json.dumps(resp.json())
    _, resp = await invoke(teams, {"action": "ctx_revoke", "ref": "5001", "confirm": True, "intent": "x"})
    assert "never in a customer channel" in json.dumps(resp.json())
    assert len(teams.graph.calls) == calls and teams.graph.tenants[M365].writes == []
    async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
        assert (await s.exec(sa.select(OutboxOp).where(OutboxOp.kind == "tenant_action"))).scalars().all() == []


async def test_a_second_reset_asks_again_before_a_second_reset(teams):
    """One intent, one write: a second Reset (confirmed with its Yes) moments after the first does nothing but ask
    once more; only "Reset again" resets a second time, once however often Teams redelivers that invoke."""
    admin = Actor(workspace_id=teams.ws, origin=Actor.system(teams.ws).origin, display="admin", is_admin=True)
    await teams.c.quick_actions.grant(admin, teams.setup.member_id)
    ctx = await _card(teams, {"action": "context", "ref": "5001"})

    async def personal(data):
        body = teams.activity(kind="invoke", name="adaptiveCard/action", ctype="personal", conversation="a:personal-bob",
                              value={"action": {"type": "Action.Execute", "verb": VERB, "data": data}, "trigger": "manual"})
        resp = await teams.send(body)
        assert resp.status_code == 200
        card = resp.json()["value"]
        assert_valid_card(card)
        return body, card

    async def ops():
        async with teams.c.db.read(Scope.workspace(teams.ws)) as s:
            return (await s.exec(select(OutboxOp).where(OutboxOp.kind == "tenant_action"))).all()

    _, confirm = await personal(_actions(ctx)["ctx_reset:"]["data"])
    _, first = await personal(_actions(confirm)["ctx_reset:"]["data"])
    assert "Temporary password: " in text_of({"value": first})
    _, confirm = await personal(_actions(ctx)["ctx_reset:"]["data"])  # a second Reset, and its Yes
    _, asked = await personal(_actions(confirm)["ctx_reset:"]["data"])
    text = text_of({"value": asked})
    assert "Temporary password" not in text and "password is being reset: asked less than a minute ago" in text
    assert "Reset again? The temporary password given then stops working." in text and len(await ops()) == 1
    again = _actions(asked)["ctx_reset:"]
    assert again["title"] == "Reset again" and again["data"]["again"] is True and again["data"]["confirm"] is True
    body, second = await personal(again["data"])
    pw = next(b["text"] for b in second["body"] if b["text"].startswith("Temporary password: ")).split(": ")[1]
    await teams.send(body)  # redelivered: still that one op
    assert len(await ops()) == 2
    await teams.c.outbox_worker.drain()
    writes = teams.graph.tenants[M365].writes
    assert len(writes) == 2 and writes[1][2]["password"] == pw
