"""The new-ticket form's customer picker past Slack's 100-option limit: an external_select whose typeahead
(block_suggestion) is answered from core's `ChatViews.customer_options`, which is tested here too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from sqlmodel import select

from bot.main import build
from bot.settings import Settings
from core.context import Actor
from store.crypto import generate_key
from store.db import Scope
from store.enums import Origin
from store.tables import Customer, OutboxOp, Ticket
from tests.bot.slack.conftest import ADMIN, CHANNEL, STRANGER, TEAM, TECH
from tests.factories import psa_backed

ROOT = Path(__file__).resolve().parents[3]

# Beside psa_backed's "Acme Corp" (ACME) and "Globex" (GLOBEX); "acm" matches the first five, best first.
NAMED = [
    ("ACM", "Zeta Advanced Computing Machines", True),  # identifier equal to the text
    ("ACMH", "ACM Holdings", True),  # identifier starts with it (and "Acme Corp", ACME)
    ("DENT1", "Acmeville Dental", True),  # name starts with it
    ("PACMAN", "Pacman Games", True),  # contains it
    ("OLDACME", "Acme Old", False),  # inactive: never offered
    ("UPTIME", "100% Uptime Ltd", True),
    ("US_1", "Under Score Inc", True),
    ("OBRIEN", "O'Brien IT", True),
    ("BSL", "Back\\Slash Co", True),
]
ACM_ORDER = ["ACM", "ACMH", "ACME", "DENT1", "PACMAN"]


async def seed_customers(db, ws, connection_id, *, filler=150, named=True):
    """`filler` customers that match nothing special ("Filler 000" …), plus the NAMED ones."""
    async with db.write(Scope.workspace(ws)) as s:
        for i in range(filler):
            s.add(Customer(workspace_id=ws, connection_id=connection_id, external_id=f"9{i:04d}",
                           identifier=f"F{i:03d}", name=f"Filler {i:03d}"))
        for n, (ident, name, active) in enumerate(NAMED if named else []):
            s.add(Customer(workspace_id=ws, connection_id=connection_id, external_id=f"8{n:04d}", identifier=ident,
                           name=name, active=active))


async def ids_by_identifier(db, ws):
    async with db.read(Scope.workspace(ws)) as s:
        return {c.identifier: c.id for c in (await s.exec(select(Customer))).all()}


# ---------------------------------------------------------------- core: ChatViews.customer_options


@pytest.fixture
async def picker(db, db_url, workspace_id, tmp_path):
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k"))
    c.default_workspace_id = workspace_id
    setup = await psa_backed(db, workspace_id)
    tech = Actor(workspace_id=workspace_id, origin=Origin.SLACK, member_id=setup.member_id, display="slack:U1")
    yield c.chat_views, tech, setup
    await c.aclose()


def idents(options):
    return [o.label.rsplit("(", 1)[1].rstrip(")") for o in options]


async def test_options_match_name_or_identifier_any_case_best_first(picker, db, workspace_id):
    views, tech, setup = picker
    await seed_customers(db, workspace_id, setup.connection_id)
    got = await views.customer_options(tech, "acm")
    assert idents(got) == ACM_ORDER  # exact identifier, identifier prefix (by name), name prefix, contains
    assert idents(await views.customer_options(tech, "  AcM ")) == ACM_ORDER  # any case, trimmed
    assert got[2].label == "Acme Corp (ACME)" and got[2].value == str(setup.customer_id)
    assert idents(await views.customer_options(tech, "dental")) == ["DENT1"]  # inside the name
    assert idents(await views.customer_options(tech, "acm", limit=2)) == ["ACM", "ACMH"]
    assert await views.customer_options(tech, "no such customer") == []


async def test_empty_query_gives_the_first_by_name_active_only(picker, db, workspace_id):
    views, tech, setup = picker
    await seed_customers(db, workspace_id, setup.connection_id)
    first = await views.customer_options(tech, "")
    assert len(first) == 100
    names = [o.label for o in first]
    assert names[:4] == ["100% Uptime Ltd (UPTIME)", "ACM Holdings (ACMH)", "Acme Corp (ACME)",
                         "Acmeville Dental (DENT1)"]
    assert names == sorted(names, key=str.lower)
    everyone = await views.customer_options(tech, "", limit=1000)
    assert "Acme Old (OLDACME)" not in [o.label for o in everyone] and len(everyone) == 150 + len(NAMED) - 1 + 2


async def test_wildcards_quotes_and_long_text_match_only_themselves(picker, db, workspace_id):
    views, tech, setup = picker
    await seed_customers(db, workspace_id, setup.connection_id)
    assert idents(await views.customer_options(tech, "%")) == ["UPTIME"]  # not "everything"
    assert idents(await views.customer_options(tech, "_")) == ["US_1"]  # not "any one character"
    assert idents(await views.customer_options(tech, "0%")) == ["UPTIME"]
    assert await views.customer_options(tech, "F_0") == []  # F000… would match an unescaped pattern
    assert idents(await views.customer_options(tech, "\\")) == ["BSL"]
    assert idents(await views.customer_options(tech, "o'brien")) == ["OBRIEN"]
    assert await views.customer_options(tech, "' OR '1'='1") == []
    assert await views.customer_options(tech, '"; DROP TABLE customer; --') == []
    assert await views.customer_options(tech, "a" * 5000) == []
    assert await views.customer_options(tech, "acme" * 60) == []  # over 200 characters: nothing can match
    assert len(await views.customer_options(tech, "Filler")) == 100  # the table is still there


async def test_scope_contacts_and_customer_channels(picker, db, workspace_id, other_workspace_id):
    views, tech, setup = picker
    await seed_customers(db, workspace_id, setup.connection_id)
    other = await psa_backed(db, other_workspace_id)  # another MSP's "Acme Corp"
    in_acme = tech.scoped_to_customer(setup.customer_id)
    assert [o.value for o in await views.customer_options(in_acme, "")] == [str(setup.customer_id)]
    assert [o.value for o in await views.customer_options(in_acme, "acm")] == [str(setup.customer_id)]
    assert await views.customer_options(in_acme, "globex") == []
    contact = Actor(workspace_id=workspace_id, origin=Origin.SLACK, is_member=False,
                    customer_scope_id=setup.customer_id)
    assert await views.customer_options(contact, "") == [] and await views.customer_options(contact, "acme") == []
    unlinked_admin = Actor(workspace_id=workspace_id, origin=Origin.SLACK, is_member=False, is_admin=True,
                           customer_scope_id=-1)
    assert await views.customer_options(unlinked_admin, "") == []
    got = await views.customer_options(tech, "acme corp")
    assert [o.value for o in got] == [str(setup.customer_id)] and str(other.customer_id) not in [o.value for o in got]


async def test_up_to_100_customers_keep_the_dropdown_then_the_field_is_searched(picker, db, workspace_id):
    views, tech, setup = picker
    await seed_customers(db, workspace_id, setup.connection_id, filler=98, named=False)  # 100 with Acme, Globex
    field = next(f for f in (await views.new_ticket_form(tech)).fields if f.name == "customer")
    assert (field.kind, len(field.options), field.source) == ("select", 100, None)
    async with db.write(Scope.workspace(workspace_id)) as s:
        s.add(Customer(workspace_id=workspace_id, identifier="N101", name="Customer 101"))
    field = next(f for f in (await views.new_ticket_form(tech)).fields if f.name == "customer")
    assert (field.kind, field.options, field.source) == ("search_select", (), "customers")
    assert field.hint and "name or identifier" in field.hint
    in_channel = await views.new_ticket_form(tech.scoped_to_customer(setup.customer_id))
    assert "customer" not in [f.name for f in in_channel.fields]  # the channel decides the customer


# ---------------------------------------------------------------- Slack: external_select + block_suggestion


def suggestion(h, view, text, *, user=TECH, metadata=None):
    v = {**view, "id": "V0001", "team_id": TEAM, "state": {"values": {}}}
    if metadata is not None:
        v["private_metadata"] = json.dumps(metadata)
    return {"type": "block_suggestion", "user": {"id": user, "username": user.lower(), "team_id": TEAM},
            "container": {"type": "view", "view_id": "V0001"}, "api_app_id": "A0001", "token": "x",
            "action_id": "search_customers", "block_id": "customer", "value": text,
            "team": {"id": TEAM, "domain": "fake"}, "view": v}


async def open_new_ticket_form(h, *, user=TECH, channel=CHANNEL):
    await h.slash("/ticket", "new Laptop will not boot", user=user, channel=channel)
    return h.last_view()


async def test_past_100_customers_the_form_has_a_valid_external_select(slack):
    await seed_customers(slack.c.db, slack.ws, slack.setup.connection_id)
    view = await open_new_ticket_form(slack)
    View(**view).validate_json()
    for b in view["blocks"]:
        Block.parse(b).validate_json()
    block = next(b for b in view["blocks"] if b["block_id"] == "customer")
    el = block["element"]
    assert el["type"] == "external_select" and el["action_id"] == "search_customers"
    assert el["min_query_length"] == 0 and "options" not in el
    assert "name or identifier" in block["hint"]["text"]


async def test_block_suggestion_answers_matching_customers_from_the_database(slack):
    await seed_customers(slack.c.db, slack.ws, slack.setup.connection_id)
    view = await open_new_ticket_form(slack)
    slack.fake.clear()
    # The options are the ack itself (Slack waits at most 3 s): they come from the database alone, with no Slack
    # call (asserted below). Not timed: a 2 s stopwatch here is a latency figure, and failed on a loaded machine.
    resp = await slack.interactive(suggestion(slack, view, "acm"), settle=False)
    assert resp.status_code == 200
    options = resp.json()["options"]
    assert [o["text"]["text"] for o in options] == [
        "Zeta Advanced Computing Machines (ACM)", "ACM Holdings (ACMH)", "Acme Corp (ACME)",
        "Acmeville Dental (DENT1)", "Pacman Games (PACMAN)"]
    ids = await ids_by_identifier(slack.c.db, slack.ws)
    assert [o["value"] for o in options] == [str(ids[i]) for i in ACM_ORDER]
    assert slack.fake.calls == []  # no Slack API call (no users.info) while Slack waits
    # an empty query (menu just opened) lists the first 100 by name, each a valid option object
    first = (await slack.interactive(suggestion(slack, view, ""), settle=False)).json()["options"]
    assert len(first) == 100 and first[0]["text"]["text"] == "100% Uptime Ltd (UPTIME)"
    assert all(len(o["text"]["text"]) <= 75 and o["text"]["type"] == "plain_text" for o in first)
    # typed wildcards are literal
    pct = (await slack.interactive(suggestion(slack, view, "%"), settle=False)).json()["options"]
    assert [o["text"]["text"] for o in pct] == ["100% Uptime Ltd (UPTIME)"]


async def test_block_suggestion_gives_strangers_nothing_and_customer_channels_their_customer(slack):
    await seed_customers(slack.c.db, slack.ws, slack.setup.connection_id)
    view = await open_new_ticket_form(slack)
    stranger = await slack.interactive(suggestion(slack, view, "acm", user=STRANGER), settle=False)
    assert stranger.status_code == 200 and stranger.json()["options"] == []
    await slack.slash("/deskbridge", "bind customer GLOBEX", user=ADMIN, channel="C_GLOBEX")
    assert "bound to customer Globex" in slack.fake.webhooks[-1]["text"]
    in_globex = {"channel": "C_GLOBEX", "form": "new_ticket", "ticket": None}
    everything = await slack.interactive(suggestion(slack, view, "", metadata=in_globex), settle=False)
    assert [o["text"]["text"] for o in everything.json()["options"]] == ["Globex (GLOBEX)"]
    other = await slack.interactive(suggestion(slack, view, "acm", metadata=in_globex), settle=False)
    assert other.json()["options"] == []
    contact = await slack.interactive(suggestion(slack, view, "", user=STRANGER, metadata=in_globex), settle=False)
    assert contact.json()["options"] == []  # a customer's own user may not pick customers at all
    broken = await slack.interactive(suggestion(slack, view, "acm", metadata=None) | {
        "view": {**view, "private_metadata": "{not json"}}, settle=False)
    assert broken.status_code == 200 and len(broken.json()["options"]) == 5  # no channel: the technician's view


async def test_submitting_a_searched_customer_creates_the_ticket_for_it(slack):
    await seed_customers(slack.c.db, slack.ws, slack.setup.connection_id)
    view = await open_new_ticket_form(slack)
    picked = (await slack.interactive(suggestion(slack, view, "pacman"), settle=False)).json()["options"][0]
    values = {"subject": {"v": {"type": "plain_text_input", "value": "Laptop will not boot"}},
              "customer": {"search_customers": {"type": "external_select", "selected_option": picked}},
              "board": {"v": {"type": "static_select", "selected_option": {"value": "1"}}},
              "priority": {"v": {"type": "static_select", "selected_option": {"value": "high"}}}}
    slack.fake.clear()
    resp = await slack.interactive({"type": "view_submission", "team": {"id": TEAM},
                                    "user": {"id": TECH, "team_id": TEAM}, "view": {**view, "state": {
                                        "values": values}}})
    assert resp.status_code == 200 and resp.text == ""
    ids = await ids_by_identifier(slack.c.db, slack.ws)
    async with slack.c.db.read(Scope.workspace(slack.ws)) as s:
        op = (await s.exec(select(OutboxOp))).one()
        ticket = (await s.exec(select(Ticket).where(Ticket.subject == "Laptop will not boot"))).one()
    assert ticket.customer_id == ids["PACMAN"]
    assert op.kind == "create_ticket" and op.payload["company_external_id"] == "80003"
    assert "Pacman Games" in json.dumps(slack.fake.of("chat.postMessage")[-1].args["blocks"])


async def test_a_small_workspace_keeps_the_static_dropdown(slack):
    view = await open_new_ticket_form(slack)
    el = next(b for b in view["blocks"] if b["block_id"] == "customer")["element"]
    assert el["type"] == "static_select"
    assert [o["text"]["text"] for o in el["options"]] == ["Acme Corp (ACME)", "Globex (GLOBEX)"]


def test_manifest_sends_option_requests_to_the_app():
    manifest = yaml.safe_load((ROOT / "manifests" / "slack" / "manifest.yaml").read_text())
    interactivity = manifest["settings"]["interactivity"]
    assert interactivity["message_menu_options_url"] == interactivity["request_url"]
    assert interactivity["request_url"].endswith("/slack/events")


async def test_each_keystroke_costs_one_indexed_query(slack, db_url):
    """Once the user and the channel are cached (the first request), a typeahead request is one SELECT,
    and it reads the workspace's customers through an index, not by scanning every workspace's."""
    import sqlite3

    import sqlalchemy as sa

    await seed_customers(slack.c.db, slack.ws, slack.setup.connection_id)
    view = await open_new_ticket_form(slack)
    await slack.interactive(suggestion(slack, view, "ac"), settle=False)
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        resp = await slack.interactive(suggestion(slack, view, "acm"), settle=False)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    assert len(resp.json()["options"]) == 5
    assert len(seen) == 1 and "customer" in seen[0][0]
    if slack.c.db.is_sqlite:
        con = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        try:
            plan = " ".join(str(r[-1]) for r in con.execute("EXPLAIN QUERY PLAN " + seen[0][0], seen[0][1]))
        finally:
            con.close()
        assert "USING INDEX" in plan and "workspace_id" in plan, plan
