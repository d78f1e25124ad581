"""Microsoft 365 context in Slack, through the real bolt app and FastAPI (signed requests over ASGI), the loopback
fake Slack API and the httpx-transport Graph fake: the card's Context button (technicians' cards only), the
context modal, changing the user, recent activity, installed apps, and a password reset whose temporary password
only the clicking technician sees; never in customer channels."""

from __future__ import annotations

import json
import logging

import pytest
from sqlmodel import select

from bot.api.app import create_app
from bot.main import build
from bot.settings import Settings
from core.context import Actor
from store.crypto import generate_key
from store.db import Scope
from store.enums import Origin
from store.tables import (
    AuditLog,
    Contact,
    Customer,
    Member,
    OutboxOp,
    Ticket,
    TicketM365Subject,
    TimelineEntry,
)
from tests.bot.slack.conftest import ADMIN, CHANNEL, SIGNING_SECRET, TECH, SlackHarness, seed_tickets
from tests.bot.slack.test_slack_app import assert_valid_blocks
from tests.factories import psa_backed
from tests.fakes.graph import GRAPH, LOGIN, FakeGraph, seed_acme

TENANT = "0b5d8f4e-1c2a-4c3b-9d8e-7f6a5b4c3d2e"


@pytest.fixture
def graph() -> FakeGraph:
    g = FakeGraph()
    seed_acme(g, TENANT)
    return g


@pytest.fixture
async def slack(db, db_url, workspace_id, fake_slack, tmp_path, graph):
    setup = await psa_backed(db, workspace_id)
    await seed_tickets(db, workspace_id, setup)
    async with db.write(Scope.workspace(workspace_id)) as s:
        jane = Contact(workspace_id=workspace_id, customer_id=setup.customer_id, name="Jane", email="jane@acme.example")
        s.add(jane)
        await s.flush()
        t = (await s.exec(select(Ticket).where(Ticket.number == 5001))).one()
        t.contact_id = jane.id
        s.add(t)
    settings = Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                        secret_key_file=tmp_path / "k", workspace_slug="acme-msp", run_scheduler=False,
                        run_outbox_worker=False, slack_bot_token="xoxb-test-token",
                        slack_signing_secret=SIGNING_SECRET, slack_api_url=fake_slack.api_url,
                        m365_client_id=graph.client_id, m365_client_secret=graph.client_secret,
                        m365_graph_url=GRAPH, m365_login_url=LOGIN)
    container = build(settings, transport=graph.routed_transport())
    container.default_workspace_id = workspace_id
    async with db.read(Scope.workspace(workspace_id)) as s:
        acme = await s.get(Customer, setup.customer_id)
    await container.m365.connect(workspace_id, acme, TENANT)
    await container.slack.start()
    h = SlackHarness(create_app(container, start_background=False), container, fake_slack, workspace_id, setup)
    fake_slack.clear()
    yield h
    await h.settle()
    await h.http.aclose()
    await container.aclose()


def _buttons(blocks) -> dict[str, dict]:
    out = {}
    for b in blocks:
        for e in b.get("elements", []) if b["type"] == "actions" else [b.get("accessory") or {}]:
            if e.get("action_id"):
                out.setdefault(e["action_id"], e)
    return out


async def _card(h, number: int, channel: str = CHANNEL) -> list[dict]:
    await h.slash("/ticket", str(number), channel=channel)
    posts = h.fake.of("chat.postMessage") + [c for c in h.fake.calls if c.method == "chat.postEphemeral"]
    blocks = posts[-1].args["blocks"] if posts else h.fake.webhooks[-1]["blocks"]
    return blocks if isinstance(blocks, list) else json.loads(blocks)


def _modal_payload(h, action: str, value: str, view: dict, *, user: str = TECH) -> dict:
    p = h.action_payload(action, value, user=user)
    for k in ("channel", "message", "response_url"):
        p.pop(k, None)
    p["container"] = {"type": "view", "view_id": "V1"}
    p["view"] = {**view, "id": "V1", "hash": "h1", "type": "modal"}
    return p


async def _grant(h) -> None:
    admin = Actor(workspace_id=h.ws, origin=Origin.SLACK, display="slack:U_ADMIN (Ada)", is_admin=True)
    await h.c.quick_actions.grant(admin, h.setup.member_id)


async def _open_context(h) -> dict:
    blocks = await _card(h, 5001)
    ctx = _buttons(blocks)["db_context"]
    h.fake.clear()
    await h.interactive(h.action_payload("context", ctx["value"], message_ts="111.1"))
    view = h.last_view()
    assert_valid_blocks(view["blocks"], 100)
    return view


async def test_context_button_only_where_the_customer_has_a_tenant(slack):
    acme = _buttons(await _card(slack, 5001))
    assert acme["db_context"]["text"]["text"] == "Context"
    globex = _buttons(await _card(slack, 5002))  # Globex has no Microsoft 365 tenant
    assert "db_context" not in globex and "db_reply" in globex


async def test_technician_opens_context_and_resets_a_password(slack, graph, caplog):
    caplog.set_level(logging.DEBUG)
    view = await _open_context(slack)
    text = json.dumps(view)
    assert "Jane Doe" in text and "jane@acme.example" in text and "ACME-LT-2" in text
    assert "Microsoft 365 Business Premium" in text and "the ticket's contact" in text
    assert "db_ctx_reset" not in _buttons(view["blocks"])  # no quick-action role yet
    await _grant(slack)
    view = await _open_context(slack)
    buttons = _buttons(view["blocks"])
    reset = buttons["db_ctx_reset"]
    assert reset["confirm"]["confirm"]["text"] == "Yes" and "jane@acme.example" in reset["confirm"]["text"]["text"]
    assert "confirm" in buttons["db_ctx_revoke"] and "confirm" in buttons["db_ctx_sync"]
    slack.fake.clear()
    await slack.interactive(_modal_payload(slack, "ctx_reset", reset["value"], view))
    pushed = slack.fake.of("views.push")[-1].args["view"]
    password = next(b["text"]["text"] for b in pushed["blocks"] if "Temporary password" in b["text"].get("text", ""
                                                                                                        ) if "text" in b)
    pw = password.split("`")[1]
    assert len(pw) == 16 and "Only you see this" in json.dumps(pushed)
    # Not in any message of any channel (the thread gets the internal note, without it), nor in the logs
    posted = json.dumps([c.args for c in slack.fake.calls if c.method != "views.push"])
    ours = [f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.name.startswith("deskbridge")]
    assert pw not in posted and not [line for line in ours if pw in line]  # (third-party loggers sit at WARNING)
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        op = (await s.exec(select(OutboxOp).where(OutboxOp.kind == "tenant_action"))).one()
        note = (await s.exec(select(TimelineEntry).where(TimelineEntry.kind == "note_internal"))).one()
    assert note.body.startswith("Microsoft 365 quick action: password of jane@acme.example reset")
    assert op.actor.startswith("slack:") and pw not in json.dumps(op.payload)
    await slack.c.outbox_worker.drain()
    assert graph.tenants[TENANT].writes[0][:2] == ("passwordProfile", "u-jane")
    assert graph.tenants[TENANT].writes[0][2]["password"] == pw
    graph_logs = [str(getattr(r, "path", "")) for r in caplog.records
                  if r.name == "deskbridge.psa.http" and getattr(r, "host", "") == "graph.fake"]
    assert any("/users/upn-" in p for p in graph_logs)  # the user looked up by UPN: logged as a hash
    assert not [p for p in graph_logs if "@" in p] and pw not in caplog.text.split("views.push")[0]


async def test_reset_password_still_shown_when_the_click_trigger_expired(slack, graph):
    """Graph was slow, so Slack refuses the push (a trigger lasts 3 s): the reset is queued all the same, and its
    temporary password replaces the context modal instead of being lost."""
    await _grant(slack)
    view = await _open_context(slack)
    reset = _buttons(view["blocks"])["db_ctx_reset"]
    slack.fake.clear()
    slack.fake.fail("views.push", error="expired_trigger_id")
    await slack.interactive(_modal_payload(slack, "ctx_reset", reset["value"], view))
    (update,) = [c for c in slack.fake.of("views.update") if "Temporary password" in json.dumps(c.args)]
    assert update.args["view_id"] == "V1"
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        assert len((await s.exec(select(OutboxOp).where(OutboxOp.kind == "tenant_action"))).all()) == 1


async def test_never_in_customer_channels(slack, graph):
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME")
    slack.fake.clear()
    await slack.slash("/ticket", "5001", channel="C_ACME")
    sent = json.dumps([c.args for c in slack.fake.calls] + slack.fake.webhooks)
    assert "db_context" not in sent  # the customer's card has no Context button
    calls = len(graph.calls)
    slack.fake.clear()
    await slack.interactive(slack.action_payload("context", "5001", channel="C_ACME", message_ts="222.2"))
    assert slack.fake.of("views.open") == [] and len(graph.calls) == calls  # a forged click: refused, nothing read
    assert "never in a customer channel" in json.dumps(slack.fake.webhooks)
    # A modal opened elsewhere cannot be replayed with the customer channel as its origin either
    await _grant(slack)
    view = {"private_metadata": json.dumps({"t": 1, "c": "C_ACME"}), "blocks": []}
    slack.fake.clear()
    await slack.interactive(_modal_payload(slack, "ctx_revoke", json.dumps({"t": 1}), view))
    assert graph.tenants[TENANT].writes == [] and slack.fake.of("views.push")[-1].args["view"]["blocks"]
    assert "never in a customer channel" in json.dumps(slack.fake.of("views.push")[-1].args["view"])


async def test_change_user_activity_and_apps(slack, graph):
    view = await _open_context(slack)
    buttons = _buttons(view["blocks"])
    slack.fake.clear()
    await slack.interactive(_modal_payload(slack, "ctx_change", buttons["db_ctx_change"]["value"], view))
    form = slack.fake.of("views.push")[-1].args["view"]
    assert form["callback_id"] == "db_ctx_choose"

    async def submit(typed: str):
        return await slack.interactive({"type": "view_submission", "team": {"id": "T0001"},
                                        "user": {"id": TECH, "team_id": "T0001"}, "view": {
                                            **form, "id": "V2", "hash": "h2", "state": {"values": {
                                                "user": {"value": {"type": "plain_text_input", "value": typed}}}}}})

    bad = (await submit("nobody@acme.example")).json()
    assert bad["response_action"] == "errors" and "No user nobody@acme.example" in bad["errors"]["user"]
    ok = (await submit("carol@acme.example")).json()
    assert ok["response_action"] == "update" and "Carol Poe" in json.dumps(ok["view"])
    assert "chosen for this ticket" in json.dumps(ok["view"])
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        row = (await s.exec(select(TicketM365Subject))).one()
    assert row.user_key == "carol.poe@acmecorp.onmicrosoft.com"  # stored by the UPN the tenant answered with
    # Back to Jane, then her activity: sign-ins and audit events; without P1 only the audit events
    await submit("jane@acme.example")
    graph.tenants[TENANT].premium = False
    slack.fake.clear()
    await slack.interactive(_modal_payload(slack, "ctx_activity", buttons["db_ctx_activity"]["value"], view))
    redrawn = json.dumps(slack.fake.of("views.update")[-1].args["view"])
    assert "Reset user password" in redrawn and "Directory audit events" in redrawn
    assert "Sign-ins: needs Entra ID P1 in this tenant." in redrawn and "Recent sign-ins" not in redrawn
    graph.tenants[TENANT].premium = True
    await slack.interactive(_modal_payload(slack, "ctx_activity", buttons["db_ctx_activity"]["value"], view))
    redrawn = json.dumps(slack.fake.of("views.update")[-1].args["view"])
    assert "Recent sign-ins" in redrawn and "Invalid username or password." in redrawn and "Leeds, GB" in redrawn
    apps_value = next(b["accessory"]["value"] for b in view["blocks"]
                      if b.get("accessory", {}).get("action_id") == "db_ctx_apps" and "ACME-LT-0" in b["text"]["text"])
    await slack.interactive(_modal_payload(slack, "ctx_apps", apps_value, view))
    apps = json.dumps(slack.fake.of("views.push")[-1].args["view"])
    assert "7-Zip 23.01" in apps and "Google Chrome" in apps and "3 app(s) detected by Intune" in apps


async def test_documentation_links_on_technicians_cards_only(slack):
    from tests.fakes.docs_platforms import FakeHudu, seed_hudu

    hudu = await FakeHudu().start()
    seed_hudu(hudu)
    try:
        await slack.c.docs.configure(Actor.system(slack.ws), "hudu", hudu.url, hudu.api_key)
        blocks = await _card(slack, 5001)
        buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
        if not any(e.get("action_id") == "db_open_docs" for e in buttons):  # not ready within the card's budget:
            blocks = await _card(slack, 5001)  # the next card has them (cached)
            buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
        docs = {e["text"]["text"]: e["url"] for e in buttons if e.get("action_id") == "db_open_docs"}
        assert docs["Hudu: Acme Corp"] == f"{hudu.url}/c/acme-corp"
        assert docs["Hudu: Onboarding"] == f"{hudu.url}/kba/700"
        assert_valid_blocks(blocks)
        await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME")
        slack.fake.clear()
        await slack.slash("/ticket", "5001", channel="C_ACME")
        assert "acme-corp" not in json.dumps([c.args for c in slack.fake.calls] + slack.fake.webhooks)
    finally:
        await hudu.stop()


async def test_a_refused_action_is_explained_in_the_ticket_thread(slack, graph):
    await _grant(slack)
    view = await _open_context(slack)
    graph.tenants[TENANT].permissions.discard("User.RevokeSessions.All")
    revoke = _buttons(view["blocks"])["db_ctx_revoke"]
    await slack.interactive(_modal_payload(slack, "ctx_revoke", revoke["value"], view))
    slack.fake.clear()
    await slack.c.outbox_worker.drain()
    await slack.settle()
    [said] = [c.args["text"] for c in slack.fake.of("chat.postMessage")
              if "Microsoft 365 quick action not done" in c.args["text"]]
    assert "lacks the application permission User.RevokeSessions.All" in said and "Ask the customer's admin" in said
    assert "credentials" not in said and "reauth" not in said and graph.tenants[TENANT].writes == []


async def test_a_second_reset_click_asks_again_before_a_second_reset(slack, graph):
    """One intent, one write: a second click of Reset password (after Slack's own confirm) does nothing but ask once
    more; only its "Reset again" button resets a second time. A replayed click stays the first op."""
    await _grant(slack)
    view = await _open_context(slack)
    reset = _buttons(view["blocks"])["db_ctx_reset"]
    first_click = _modal_payload(slack, "ctx_reset", reset["value"], view)
    await slack.interactive(first_click)
    assert "Temporary password" in json.dumps(slack.fake.of("views.push")[-1].args["view"])
    slack.fake.clear()
    await slack.interactive(_modal_payload(slack, "ctx_reset", reset["value"], view))  # a second click
    asked = slack.fake.of("views.push")[-1].args["view"]
    assert_valid_blocks(asked["blocks"], 100)
    text = json.dumps(asked)
    assert "Temporary password" not in text and "password is being reset: asked less than a minute ago" in text
    assert "Nothing was done for this click" in text and "Reset again?" in text
    again = _buttons(asked["blocks"])["db_ctx_reset"]
    assert again["text"]["text"] == "Reset again" and json.loads(again["value"])["again"] == 1
    assert json.loads(asked["private_metadata"]) == json.loads(view["private_metadata"])  # same origin channel
    pushes = len(slack.fake.of("views.push"))
    await slack.interactive(first_click)  # the first click, delivered again: still its one op, no password
    replayed = [json.dumps(c.args) for c in slack.fake.of("views.push")[pushes:]]
    assert not [r for r in replayed if "Temporary password" in r]
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        assert len((await s.exec(select(OutboxOp).where(OutboxOp.kind == "tenant_action"))).all()) == 1
    slack.fake.clear()
    await slack.interactive(_modal_payload(slack, "ctx_reset", again["value"], {**asked, "id": "V2"}))
    done = json.dumps(slack.fake.of("views.push")[-1].args["view"])
    assert "Temporary password" in done
    await slack.c.outbox_worker.drain()
    writes = graph.tenants[TENANT].writes
    assert [w[:2] for w in writes] == [("passwordProfile", "u-jane")] * 2
    assert writes[1][2]["password"] in done and writes[0][2]["password"] not in done


async def test_device_activity_in_the_modal(slack, graph):
    """The ticket names a device (its RMM name here): the context pins it, and Recent activity shows its last
    check-in and the user's sign-ins made from it."""
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:
        t = (await s.exec(select(Ticket).where(Ticket.number == 5001))).one()
        t.device_ref = "acme-lt-1"
        s.add(t)
    view = await _open_context(slack)
    assert "ACME-LT-1* :pushpin: _this ticket's device_" in json.dumps(view)
    slack.fake.clear()
    await slack.interactive(_modal_payload(slack, "ctx_activity", _buttons(view["blocks"])["db_ctx_activity"]["value"],
                                           view))
    redrawn = slack.fake.of("views.update")[-1].args["view"]
    assert_valid_blocks(redrawn["blocks"], 100)
    device = next(b["text"]["text"] for b in redrawn["blocks"] if "(this ticket's device)" in
                  (b.get("text") or {}).get("text", ""))
    assert "last check-in 2026-12-02 10:00 UTC · enrolled 2026-01-05 09:00 UTC" in device
    assert device.split("*Sign-ins from it*\n")[1].count("203.0.113.") == 3 and "203.0.113.2" not in device


async def test_admins_grant_quick_actions_from_chat(slack, graph):
    """`/deskbridge m365 grant|revoke @someone` (admins) and `/deskbridge m365` (who may): the Reset button follows."""
    view = await _open_context(slack)  # Bob has used Deskbridge: his chat account is linked
    assert "db_ctx_reset" not in _buttons(view["blocks"])
    await slack.slash("/deskbridge", f"m365 grant <@{TECH}>", user=TECH)
    said = slack.fake.webhooks[-1]["text"]
    assert "Only a Deskbridge admin can grant" in said and "/deskbridge m365 grant @you" in said
    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:  # Ada: a Deskbridge admin (linked by e-mail)
        s.add(Member(workspace_id=slack.ws, name="Ada Admin", email="admin@acme-msp.example", is_admin=True))
    await slack.slash("/deskbridge", f"m365 grant <@{TECH}|bob>", user=ADMIN)
    assert "may now run Microsoft 365 quick actions" in slack.fake.webhooks[-1]["text"]
    assert "db_ctx_reset" in _buttons((await _open_context(slack))["blocks"])
    await slack.slash("/deskbridge", "m365", user=TECH)
    listed = json.dumps(slack.fake.webhooks[-1])
    assert "1 granted technician(s)" in listed and "granted by slack:" in listed
    await slack.slash("/deskbridge", "m365 revoke nobody@acme-msp.example", user=ADMIN)
    said = slack.fake.webhooks[-1]["text"]
    assert "No technician 'nobody@acme-msp.example'" in said and "Mention them" in said
    await slack.slash("/deskbridge", "m365 grant", user=ADMIN)
    assert "Whom should I grant?" in slack.fake.webhooks[-1]["text"]
    await slack.slash("/deskbridge", "bind customer ACME", user=ADMIN, channel="C_ACME")
    await slack.slash("/deskbridge", f"m365 revoke <@{TECH}>", user=ADMIN, channel="C_ACME")
    assert "outside customer channels" in slack.fake.webhooks[-1]["text"]
    assert "db_ctx_reset" in _buttons((await _open_context(slack))["blocks"])  # still granted
    await slack.slash("/deskbridge", f"m365 revoke <@{TECH}>", user=ADMIN)
    assert "may no longer run" in slack.fake.webhooks[-1]["text"]
    assert "db_ctx_reset" not in _buttons((await _open_context(slack))["blocks"])
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:  # each change audited, with who made it
        rows = (await s.exec(select(AuditLog).where(AuditLog.outcome == "changed").order_by(AuditLog.id))).all()
    assert [(r.action, r.actor) for r in rows if r.action.startswith("m365.")] == [
        ("m365.grant", "slack:U_ADMIN (u_admin)"), ("m365.revoke", "slack:U_ADMIN (u_admin)")]


async def test_similar_closed_tickets_beside_the_context(slack):
    """AI assist's similar closed tickets (this customer's, per the workspace's AI settings) in the context modal."""
    from datetime import UTC, datetime

    async with slack.c.db.write(Scope.workspace(slack.ws)) as s:
        for number, subject in ((4001, "VPN down after the firewall update"), (4002, "VPN down at the Leeds office"),
                                (4003, "Printer out of toner")):
            s.add(Ticket(workspace_id=slack.ws, number=number, external_id=str(number),
                         connection_id=slack.setup.connection_id, customer_id=slack.setup.customer_id,
                         subject=subject, priority="medium", priority_rank=2, stage="closed",
                         closed_at=datetime(2026, 11, 3, 9, 0, tzinfo=UTC), psa_status_id="5",
                         psa_status_name="Closed"))
        ticket_id = (await s.exec(select(Ticket.id).where(Ticket.number == 5001))).one()
    tech = Actor(workspace_id=slack.ws, origin=Origin.SLACK, display="t", member_id=slack.setup.member_id)
    await slack.c.ai.similar(tech, ticket_id=ticket_id)  # the workspace's index is built (as after a card)
    slack.c.tenant_context.similar_budget = 30.0  # (the 0.5 s budget is for production; this machine is loaded)
    view = await _open_context(slack)
    section = next(b["text"]["text"] for b in view["blocks"]
                   if "Similar closed tickets" in (b.get("text") or {}).get("text", ""))
    assert "#4001 VPN down after the firewall update" in section and "#4002 VPN down at the Leeds office" in section
    assert "closed 03 Nov 2026" in section and "Printer" not in section
    await slack.c.ai.set_setting(Actor.system(slack.ws), "similar", "off")  # an admin turned it off: none shown
    assert "Similar closed tickets" not in json.dumps(await _open_context(slack))
