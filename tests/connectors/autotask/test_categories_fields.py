"""Issue type / sub-issue type (the seam's category pair) and ticket UDFs, against the fake Autotask: read by
the connector, synced into the local ticket, shown on technicians' cards (UDFs only where an admin chose
them, never to customers), and set on create and update (UDF values on update) with what is written checked
before anything is queued."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlmodel import select

from bot.api.app import create_app
from bot.console.render import render_ticket
from bot.main import bootstrap, build
from bot.settings import Settings
from bot.slack.blocks import ticket_blocks
from bot.teams.cards import ticket_card
from connectors.autotask.connector import AutotaskConnector
from connectors.base import NewTicket, PsaCategory, TicketPatch
from connectors.errors import PsaValidationError
from core import card_fields
from core.context import Actor
from core.errors import InvalidInput
from store.crypto import generate_key
from store.db import Scope
from store.enums import EntryKind, Origin
from store.tables import Customer, OutboxOp, Ticket
from tests.bot.api.conftest import PREFIX, api_settings, assert_problem
from tests.fakes.autotask import FakeAutotask, FakeClock
from tests.fakes.autotask_harness import config
from tests.fakes.autotask_schema import Udf

ACME = 175
HARDWARE, PRINTER, LAPTOP, SOFTWARE, EMAIL, OFFICE = 11, 101, 102, 12, 201, 202


@pytest.fixture
def fake() -> FakeAutotask:
    return FakeAutotask(clock=FakeClock(datetime.now(UTC)))


def _udfs(po: str | None) -> list[dict[str, str | None]]:
    return [{"name": "Customer PO", "value": po}, {"name": "Deskbridge Ref", "value": "m-not-for-people"}]


# ---------------------------------------------------------------- the connector


async def test_the_connector_reads_the_pair_and_udfs_and_checks_the_pair_before_writing(fake: FakeAutotask) -> None:
    raw = fake.add_ticket("Toner low", companyID=ACME, issueType=HARDWARE, subIssueType=PRINTER,
                          userDefinedFields=_udfs("PO-77"))
    at = AutotaskConnector(config(fake), transport=fake.transport())
    try:
        t = await at.get_ticket(str(raw["id"]))
        assert (t.category.id, t.category.name, t.subcategory.id, t.subcategory.name) == (  # type: ignore[union-attr]
            "11", "Hardware", "101", "Printer")
        assert dict(t.custom_fields) == {"Customer PO": "PO-77"}  # our marker's UDF is plumbing, not shown
        pl = await at.picklists()
        assert PsaCategory(external_id="101", name="Printer", parent_external_id="11", sort_order=1) in pl.categories
        assert [c.name for c in pl.categories if c.parent_external_id is None] == ["Hardware", "Software"]
        assert {f.name for f in pl.custom_fields} == {"Customer PO"}

        fake.reset_counts()
        with pytest.raises(PsaValidationError, match="not a sub-issue type of Hardware; valid: Printer, Laptop"):
            await at.create_ticket(NewTicket(summary="x", marker="m-1", company_external_id=str(ACME),
                                             category_external_id=str(HARDWARE),
                                             subcategory_external_id=str(EMAIL)))
        assert fake.count("POST /Tickets") == 0  # refused before sending
        made = await at.create_ticket(NewTicket(summary="Outlook crashes", marker="m-2", company_external_id=str(ACME),
                                                category_external_id=str(SOFTWARE),
                                                subcategory_external_id=str(OFFICE)))
        stored = fake.tables["Tickets"][int(made.external_id)]
        assert (stored["issueType"], stored["subIssueType"]) == (SOFTWARE, OFFICE)

        # A category change sends its sub-issue type with it (none: cleared, so Autotask never sees a stale pair).
        await at.update_ticket(str(raw["id"]), TicketPatch(category_external_id=str(SOFTWARE),
                                                           subcategory_external_id=""))
        assert (fake.tables["Tickets"][raw["id"]]["issueType"], fake.tables["Tickets"][raw["id"]]["subIssueType"]) \
            == (SOFTWARE, None)
        await at.update_ticket(str(raw["id"]), TicketPatch(custom_fields={"Customer PO": ""}))
        assert {u["name"]: u["value"] for u in fake.tables["Tickets"][raw["id"]]["userDefinedFields"]}[
            "Customer PO"] is None  # "" clears it
        with pytest.raises(PsaValidationError, match="valid: E-mail, Office"):
            await at.update_ticket(str(raw["id"]), TicketPatch(category_external_id=str(SOFTWARE),
                                                               subcategory_external_id=str(LAPTOP)))
    finally:
        await at.aclose()


# ---------------------------------------------------------------- sync, cards and writes through core


@pytest.fixture
async def container(db_url, tmp_path, workspace_id, fake):  # type: ignore[no-untyped-def]
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k"), transport=fake.transport())
    c.default_workspace_id = workspace_id
    yield c
    await c.aclose()


async def _connect(container, fake: FakeAutotask, workspace_id: int) -> int:  # type: ignore[no-untyped-def]
    conn, _ = await container.connections.add(workspace_id, kind="autotask", name="autotask",
                                              settings=fake.settings(default_board_id="29682833"),
                                              credentials=fake.credentials())
    assert (await container.sync.run(conn.id)).ok
    return int(conn.id)


async def _ticket(container, workspace_id: int, external_id: int) -> Ticket:  # type: ignore[no-untyped-def]
    async with container.db.read(Scope.workspace(workspace_id)) as s:
        return (await s.exec(select(Ticket).where(Ticket.external_id == str(external_id)))).one()


async def test_synced_pair_and_chosen_udfs_show_on_technicians_cards_only(container, fake: FakeAutotask,  # type: ignore[no-untyped-def]
                                                                         workspace_id: int) -> None:
    raw = fake.add_ticket("Toner low", companyID=ACME, issueType=HARDWARE, subIssueType=PRINTER,
                          userDefinedFields=_udfs("PO-77"))
    cid = await _connect(container, fake, workspace_id)
    local = await _ticket(container, workspace_id, raw["id"])
    assert (local.category_name, local.subcategory_name, local.custom_fields) == ("Hardware", "Printer",
                                                                                  {"Customer PO": "PO-77"})
    actor = Actor.system(workspace_id)
    card = await container.chat_views.ticket(actor, f"id:{local.id}")
    assert card.facts == (("Category", "Hardware › Printer"),)  # no UDF until an admin picks one

    with pytest.raises(InvalidInput) as bad:
        await card_fields.set_card_fields(container.db, workspace_id, cid, ["Cost centre"])
    assert "Cost centre" in bad.value.message and "Customer PO" in (bad.value.hint or "")
    assert await card_fields.set_card_fields(container.db, workspace_id, cid, ["customer po"]) == ["Customer PO"]

    card = await container.chat_views.ticket(actor, f"id:{local.id}")
    assert card.facts == (("Category", "Hardware › Printer"), ("Customer PO", "PO-77"))
    assert "PO-77" in str(ticket_blocks(card)) and "PO-77" in str(ticket_card(card))
    assert "  Customer PO: PO-77" in render_ticket(card)[0].splitlines()
    customer = await container.chat_views.ticket(actor, f"id:{local.id}", audience="customer")
    assert customer.facts == () and customer.detail.custom_fields == {} and customer.detail.category_name is None
    for drawn in (str(ticket_blocks(customer)), str(ticket_card(customer)), render_ticket(customer)[0]):
        assert "PO-77" not in drawn and "Printer" not in drawn

    fake.edit_ticket(raw["id"], userDefinedFields=[{"name": "Customer PO", "value": "PO-78"}])
    assert (await container.sync.run(cid)).ok
    assert (await _ticket(container, workspace_id, raw["id"])).custom_fields == {"Customer PO": "PO-78"}


async def test_the_pair_is_checked_before_a_write_is_accepted_and_delivered_as_set(container, fake: FakeAutotask,  # type: ignore[no-untyped-def]
                                                                                   workspace_id: int) -> None:
    raw = fake.add_ticket("Outlook crashes", companyID=ACME, issueType=HARDWARE, subIssueType=PRINTER)
    await _connect(container, fake, workspace_id)
    local = await _ticket(container, workspace_id, raw["id"])
    actor = Actor.system(workspace_id)
    with pytest.raises(InvalidInput) as bad:
        await container.tickets.update(actor, f"id:{local.id}", category="Hardware", subcategory="Office")
    assert bad.value.hint == "Valid subcategories of Hardware: Printer, Laptop."
    with pytest.raises(InvalidInput) as unknown:
        await container.tickets.update(actor, f"id:{local.id}", category="Networking")
    assert unknown.value.hint == "Valid categories: Hardware, Software."
    async with container.db.read(Scope.workspace(workspace_id)) as s:
        assert (await s.exec(select(OutboxOp))).all() == []  # nothing queued for a refused change

    before = dict(fake.tables["Tickets"][raw["id"]])
    detail = await container.tickets.update(actor, f"id:{local.id}", category="software", subcategory="E-MAIL")
    assert (detail.category_name, detail.subcategory_name) == ("Software", "E-mail")
    async with container.db.read(Scope.workspace(workspace_id)) as s:
        acme = (await s.exec(select(Customer).where(Customer.external_id == str(ACME)))).one()
    await container.tickets.create(actor, subject="New mailbox", customer_id=acme.id, category="Software",
                                   subcategory="Office")
    for _ in range(3):
        await container.outbox_worker.drain()
    after = fake.tables["Tickets"][raw["id"]]
    assert (after["issueType"], after["subIssueType"]) == (SOFTWARE, EMAIL)
    changed = {k for k in after if after[k] != before[k]} - {"lastActivityDate", "lastTrackedModificationDateTime",
                                                              "lastActivityResourceID"}
    assert changed == {"issueType", "subIssueType"}  # nothing else moved
    [made] = [t for t in fake.tables["Tickets"].values() if t["title"] == "New mailbox"]
    assert (made["issueType"], made["subIssueType"]) == (SOFTWARE, OFFICE)
    assert (await container.sync.run(local.connection_id)).ok  # the PSA's answer agrees with what we showed
    synced = await _ticket(container, workspace_id, raw["id"])
    assert (synced.category_name, synced.subcategory_name) == ("Software", "E-mail")


async def test_a_category_or_field_change_is_on_the_technicians_timeline_only(container, fake: FakeAutotask,  # type: ignore[no-untyped-def]
                                                                              workspace_id: int) -> None:
    raw = fake.add_ticket("Toner low", companyID=ACME, issueType=HARDWARE, subIssueType=PRINTER,
                          userDefinedFields=_udfs("PO-77"))
    await _connect(container, fake, workspace_id)
    local = await _ticket(container, workspace_id, raw["id"])
    ref = f"id:{local.id}"
    ana = Actor(workspace_id=workspace_id, origin=Origin.SLACK, display="slack:U1 (Ana)")
    await container.tickets.update(ana, ref, category="Software", subcategory="E-mail",
                                   custom_fields={"Customer PO": "PO-90"})
    await container.tickets.update(ana, ref, category="Software", subcategory="E-mail",
                                   custom_fields={"Customer PO": "PO-90"})  # unchanged: no entry, no op
    detail = await container.tickets.update(ana, ref, custom_fields={"Customer PO": ""})
    changes = [i for i in detail.timeline if i.kind in (EntryKind.CATEGORY_CHANGE, EntryKind.FIELD_CHANGE)]
    assert [(i.kind, i.author_name, i.data) for i in changes] == [
        (EntryKind.CATEGORY_CHANGE, "slack:U1 (Ana)",
         {"fields": ["category", "subcategory"], "from": "Hardware › Printer", "to": "Software › E-mail"}),
        (EntryKind.FIELD_CHANGE, "slack:U1 (Ana)",
         {"fields": ["Customer PO"], "from": {"Customer PO": "PO-77"}, "to": {"Customer PO": "PO-90"}}),
        (EntryKind.FIELD_CHANGE, "slack:U1 (Ana)",
         {"fields": ["Customer PO"], "from": {"Customer PO": "PO-90"}, "to": {"Customer PO": ""}})]
    async with container.db.read(Scope.workspace(workspace_id)) as s:
        ops = (await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all()  # type: ignore[arg-type]
    assert [op.timeline_entry_id for op in ops] == [i.id for i in changes]  # each op names its entry

    await container.tickets.comment(ana, ref, "New toner is on its way.", visibility="public")
    contact = Actor(workspace_id=workspace_id, origin=Origin.API, is_member=False, display="portal")
    seen = await container.tickets.get(contact, ref)
    assert [(i.kind, i.body) for i in seen.timeline] == [(EntryKind.NOTE_PUBLIC, "New toner is on its way.")]
    customer = await container.chat_views.ticket(ana, ref, audience="customer")
    assert [c.body for c in customer.conversation] == ["New toner is on its way."]
    for drawn in (str(ticket_blocks(customer)), str(ticket_card(customer)), render_ticket(customer)[0]):
        assert "PO-9" not in drawn and "E-mail" not in drawn and "Printer" not in drawn
    for _ in range(3):
        await container.outbox_worker.drain()
    after = fake.tables["Tickets"][raw["id"]]
    assert (after["issueType"], after["subIssueType"]) == (SOFTWARE, EMAIL)
    assert {u["name"]: u["value"] for u in after["userDefinedFields"]}.get("Customer PO") in (None, "")


async def test_the_chat_new_ticket_form_offers_the_pairs_and_creates_with_the_chosen_one(  # type: ignore[no-untyped-def]
        container, fake: FakeAutotask, workspace_id: int) -> None:
    await _connect(container, fake, workspace_id)
    actor = Actor.system(workspace_id)
    form = await container.chat_views.new_ticket_form(actor)
    [field] = [f for f in form.fields if f.name == "category"]
    assert [(o.value, o.label) for o in field.options] == [
        ("11", "Hardware"), ("11/101", "Hardware › Printer"), ("11/102", "Hardware › Laptop"),
        ("12", "Software"), ("12/201", "Software › E-mail"), ("12/202", "Software › Office")]
    async with container.db.read(Scope.workspace(workspace_id)) as s:
        acme = (await s.exec(select(Customer).where(Customer.external_id == str(ACME)))).one()
    writes = container.chat_commands.writes
    with pytest.raises(InvalidInput) as bad:  # a pair typed by hand that Autotask would refuse
        await writes.submit(actor, "new_ticket", {"subject": "Laptop", "customer": str(acme.id),
                                                  "category": "Software › Laptop"})
    assert bad.value.hint == "Valid subcategories of Software: E-mail, Office."
    done = await writes.submit(actor, "new_ticket", {"subject": "Laptop for Sam", "customer": str(acme.id),
                                                     "category": "11/102"})
    assert done.view.facts[0] == ("Category", "Hardware › Laptop")
    for _ in range(3):
        await container.outbox_worker.drain()
    [made] = [t for t in fake.tables["Tickets"].values() if t["title"] == "Laptop for Sam"]
    assert (made["issueType"], made["subIssueType"]) == (HARDWARE, LAPTOP)
    assert [t for t in fake.tables["Tickets"].values() if t["title"] == "Laptop"] == []


async def test_the_rest_api_sets_the_pair_on_create_and_update(db_url, tmp_path, fake: FakeAutotask) -> None:  # type: ignore[no-untyped-def]
    c = build(api_settings(db_url, tmp_path, api_rate_per_second=10_000.0, api_rate_burst=10_000),
              transport=fake.transport())
    await bootstrap(c)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(c, start_background=False)),
                               base_url="http://deskbridge.test")
    fake.udfs["Tickets"].append(Udf("Margin", "Margin", read_only=True))
    try:
        ws = c.default_workspace_id
        await _connect(c, fake, ws)
        auth = {"Authorization": f"Bearer {(await c.apikeys.create(ws, name='w', scopes=['write']))[1]}"}
        async with c.db.read(Scope.workspace(ws)) as s:
            acme = (await s.exec(select(Customer).where(Customer.external_id == str(ACME)))).one()
        body = {"subject": "Mail down", "customer_id": acme.id, "category": "Software", "subcategory": "Printer"}
        bad = assert_problem(await client.post(PREFIX + "/tickets", json=body, headers=auth), 422)
        assert bad["hint"] == "Valid subcategories of Software: E-mail, Office."
        made = await client.post(PREFIX + "/tickets", json={**body, "subcategory": "e-mail"}, headers=auth)
        assert made.status_code == 201, made.text
        assert (made.json()["category_name"], made.json()["subcategory_name"]) == ("Software", "E-mail")
        ref = made.headers["Location"].rsplit("/", 1)[1]
        moved = await client.put(f"{PREFIX}/tickets/{ref}", json={"category": "Hardware"}, headers=auth)
        assert moved.status_code == 200, moved.text
        assert (moved.json()["category_name"], moved.json()["subcategory_name"]) == ("Hardware", None)
        refused = await client.put(f"{PREFIX}/tickets/{ref}", json={"subcategory": "Office"}, headers=auth)
        assert assert_problem(refused, 422)["hint"] == "Valid subcategories of Hardware: Printer, Laptop."
        unknown = await client.put(f"{PREFIX}/tickets/{ref}", json={"custom_fields": {"Deskbridge Ref": "x"}},
                                   headers=auth)
        assert assert_problem(unknown, 422)["hint"] == "Fields you can set: Customer PO."  # never our marker
        computed = await client.put(f"{PREFIX}/tickets/{ref}", json={"custom_fields": {"Margin": "1"}},
                                    headers=auth)
        assert "is computed by the PSA" in assert_problem(computed, 422)["detail"]
        po = await client.put(f"{PREFIX}/tickets/{ref}", json={"custom_fields": {"customer po": " PO-99 "}},
                              headers=auth)
        assert po.status_code == 200, po.text
        for _ in range(3):
            await c.outbox_worker.drain()
        [t] = [t for t in fake.tables["Tickets"].values() if t["title"] == "Mail down"]
        assert (t["issueType"], t["subIssueType"]) == (HARDWARE, None)  # created as Software/E-mail, then moved
        assert {u["name"]: u["value"] for u in t["userDefinedFields"]}["Customer PO"] == "PO-99"
        async with c.db.read(Scope.workspace(ws)) as s:
            local = (await s.exec(select(Ticket).where(Ticket.external_id == str(t["id"])))).one()
        assert local.custom_fields == {"Customer PO": "PO-99"}
    finally:
        await client.aclose()
        await c.aclose()
