"""HaloPSA's other category fields (category_2..4) a ticket type makes mandatory, long category paths, and a
Change create before Halo's categories were read, against the fake HaloPSA (real HTTP through the injected
transport, the real container): the form offers the values `GET /Category?type_id=N` lists, a value Halo does not
list is refused before anything is queued naming the valid ones, and values reach Halo whole."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from bot.main import build
from bot.settings import Settings
from core.context import Actor
from core.errors import InvalidInput
from store.crypto import generate_key
from store.db import Scope
from store.tables import OutboxOp, PicklistItem, Ticket
from tests.connectors.halopsa.test_category_form import _acme, _connect, _queued
from tests.fakes.halopsa import FakeHalo

CHANGE = "3"  # the seed's Change type: category_1 mandatory
LONG = ("Infrastructure>Networking>Site-to-site VPN tunnels between the head office and the branch offices")
LONG_2 = "Resolved remotely>Screen-sharing session with the customer's own IT contact present throughout"
TOO_LONG_FOR_A_SELECT = ("Projects>" + "Migration of the customer's file shares to SharePoint Online, " * 3).rstrip(", ")


@pytest.fixture
def fake() -> FakeHalo:
    return FakeHalo()


@pytest.fixture
async def container(db_url, tmp_path, workspace_id, fake):  # type: ignore[no-untyped-def]
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k"), transport=fake.transport())
    c.default_workspace_id = workspace_id
    yield c
    await c.aclose()


def _require(fake: FakeHalo, type_id: int, field: str) -> None:
    """An admin makes `field` mandatory for agents on a ticket type (Halo's `fields[].technew` = 2)."""
    fake.ticket_types[type_id]["_fields"].append({"fieldid": 22, "fieldname": field, "technew": 2,
                                                 "enduserdetail": 1})
    fake.ticket_types[type_id]["hasmandatorytechfields"] = True


def _bodies(fake: FakeHalo) -> dict[str, dict]:
    """summary -> body of every ticket Deskbridge created in Halo."""
    return {b["summary"]: b for r in fake.requests if r.key == "POST /api/Tickets"
            for b in json.loads(r.body) if not b.get("id")}


async def _form(container, ws: int) -> dict:  # type: ignore[no-untyped-def]
    return {f.name: f for f in (await container.chat_views.new_ticket_form(Actor.system(ws))).fields}


async def test_a_mandatory_category_2_offers_halos_values_and_refuses_others_before_queueing(
        container, fake: FakeHalo, workspace_id: int) -> None:  # type: ignore[no-untyped-def]
    _require(fake, 3, "category_2")
    fake.add_category("Remote>Phone", type_id=2)
    fake.add_category(LONG_2, type_id=2)
    fake.add_category("A category_3 value", type_id=3)  # another field's list: never offered for category_2
    await _connect(container, fake, workspace_id)
    field = (await _form(container, workspace_id))["custom:category_2"]
    assert field.kind == "select" and field.hint == "Required on Change tickets."
    assert [(o.value, o.label) for o in field.options] == [
        ("Resolved by phone", "Resolved by phone"), ("Remote>Phone", "Remote>Phone"), (LONG_2, LONG_2)]

    acme, writes, ws = await _acme(container, workspace_id), container.chat_commands.writes, workspace_id
    base = {"customer": str(acme), "board": CHANGE, "category": "Hardware/Hardware>Printer"}
    before = len(fake.requests)
    for typed in ("Fax", "Remote", "Resolved by phone!"):
        with pytest.raises(InvalidInput) as bad:
            await writes.submit(Actor.system(ws), "new_ticket", {**base, "subject": "x", "custom:category_2": typed})
        assert bad.value.field == "custom:category_2" and f"halo has no category 2 '{typed}'" in bad.value.message
        assert bad.value.hint == f"Pick one of: Resolved by phone, Remote>Phone, {LONG_2}."
    with pytest.raises(InvalidInput) as missing:
        await writes.submit(Actor.system(ws), "new_ticket", {**base, "subject": "x"})
    assert missing.value.field == "custom:category_2"
    assert await _queued(container, ws) == [] and len(fake.requests) == before  # nothing queued, nothing sent

    await writes.submit(Actor.system(ws), "new_ticket", {**base, "subject": "by phone",
                                                         "custom:category_2": "remote>phone"})  # any case
    await writes.submit(Actor.system(ws), "new_ticket", {**base, "subject": "long", "custom:category_2": LONG_2})
    for _ in range(3):
        await container.outbox_worker.drain()
    made = _bodies(fake)
    assert made["by phone"]["category_2"] == "Remote>Phone"  # as Halo lists it
    assert made["long"]["category_2"] == LONG_2 and made["long"]["category_1"] == "Hardware>Printer"
    async with container.db.read(Scope.workspace(ws)) as s:
        assert {op.status for op in (await s.exec(select(OutboxOp))).all()} == {"done"}

    fake.add_category("Remote>Chat", type_id=2)  # an admin adds a value in Halo: offered after the next refresh
    assert (await container.sync.refresh_picklists(await _conn_id(container, ws))).ok
    options = [o.value for o in (await _form(container, ws))["custom:category_2"].options]
    assert options == ["Resolved by phone", "Remote>Phone", LONG_2, "Remote>Chat"]


async def _conn_id(container, ws: int) -> int:  # type: ignore[no-untyped-def]
    return int((await container.connections.list(ws))[0].id)


async def test_a_halo_category_longer_than_64_characters_is_kept_and_sent_whole(
        container, fake: FakeHalo, workspace_id: int) -> None:  # type: ignore[no-untyped-def]
    fake.add_category(LONG)
    await _connect(container, fake, workspace_id)
    ws = workspace_id
    async with container.db.read(Scope.workspace(ws)) as s:
        [sub] = (await s.exec(select(PicklistItem).where(PicklistItem.kind == "subcategory",
                                                         PicklistItem.external_id == LONG))).all()
    assert len(LONG) > 64 and sub.parent_external_id == "Infrastructure"
    assert sub.name == LONG.partition(">")[2]
    field = (await _form(container, ws))["category"]
    value = f"Infrastructure/{LONG}"
    assert field.kind == "select" and value in [o.value for o in field.options]
    acme, writes = await _acme(container, ws), container.chat_commands.writes
    await writes.submit(Actor.system(ws), "new_ticket", {"subject": "VPN down", "customer": str(acme),
                                                         "board": CHANGE, "category": value})
    for _ in range(3):
        await container.outbox_worker.drain()
    assert _bodies(fake)["VPN down"]["category_1"] == LONG  # whole, as Halo lists it
    # A ticket an agent files in Halo under that category (or one longer than any column) is read whole; before,
    # a category id over 64 characters made the sync skip the whole ticket as a bad record.
    fake.add_ticket("Branch VPN flaps", client_id=12, tickettype_id=1, category_1=LONG)
    fake.add_ticket("Odd category", client_id=12, tickettype_id=1, category_1="Deep>" + "x" * 300)
    outcome = await container.sync.run(await _conn_id(container, ws))
    assert outcome.ok and outcome.counts.get("bad", 0) == 0, outcome
    async with container.db.read(Scope.workspace(ws)) as s:
        rows = {t.subject: t for t in (await s.exec(select(Ticket))).all()}
    for subject in ("VPN down", "Branch VPN flaps"):
        assert (rows[subject].category_external_id, rows[subject].subcategory_external_id) == ("Infrastructure", LONG)
        assert rows[subject].subcategory_name == LONG.partition(">")[2]
    assert rows["Odd category"].subcategory_external_id is None  # left out, never cut; the ticket is there

    fake.add_category(TOO_LONG_FOR_A_SELECT)  # a select option's value would pass Slack's 150: typed instead
    assert (await container.sync.refresh_picklists(await _conn_id(container, ws))).ok
    field = (await _form(container, ws))["category"]
    assert field.kind == "text" and "Required on Change tickets." in (field.hint or "")
    await writes.submit(Actor.system(ws), "new_ticket", {"subject": "Migration", "customer": str(acme),
                                                         "board": CHANGE, "category": TOO_LONG_FOR_A_SELECT})
    for _ in range(3):
        await container.outbox_worker.drain()
    assert _bodies(fake)["Migration"]["category_1"] == TOO_LONG_FOR_A_SELECT


async def test_before_halos_categories_are_read_a_change_create_says_to_run_a_sync(
        container, fake: FakeHalo, workspace_id: int) -> None:  # type: ignore[no-untyped-def]
    fake.fail_next(403, times=None, match="GET /api/Category")  # e.g. the API application may not read lookups
    conn, _ = await container.connections.add(workspace_id, kind="halopsa", name="halo", settings=fake.settings(),
                                              credentials=fake.credentials())
    first = await container.sync.run(conn.id)
    assert first.ok  # tickets synced; the picklist refresh inside it was partial:
    refresh = await container.sync.refresh_picklists(conn.id)  # what `deskbridge sync picklists halo` reports
    assert refresh.status == "partial" and "Could not read category" in (refresh.error or ""), refresh
    ws, acme, writes = workspace_id, await _acme(container, workspace_id), container.chat_commands.writes
    field = (await _form(container, ws))["category"]
    assert field.kind == "text" and "run `deskbridge sync picklists halo`" in (field.hint or "")
    assert "`deskbridge sync run halo`" in (field.hint or "")
    assert (field.hint or "").startswith("Required on Change tickets.")
    with pytest.raises(InvalidInput) as bad:
        await writes.submit(Actor.system(ws), "new_ticket", {"subject": "x", "customer": str(acme), "board": CHANGE})
    assert bad.value.field == "category" and "Change tickets in halo need a category." == bad.value.message
    assert "Deskbridge has not read halo's category choices yet: run `deskbridge sync picklists halo` (the first " \
           "`deskbridge sync run halo` reads them too)" in (bad.value.hint or "")
    with pytest.raises(InvalidInput) as typed:  # a category typed into the text field meanwhile: the same advice
        await writes.submit(Actor.system(ws), "new_ticket", {"subject": "x", "customer": str(acme), "board": CHANGE,
                                                             "category": "Hardware"})
    assert "run `deskbridge sync picklists halo`" in (typed.value.hint or "")
    assert await _queued(container, ws) == []

    fake.clear_faults()  # the admin grants the right; `deskbridge sync picklists halo` reads the categories
    assert (await container.sync.refresh_picklists(conn.id)).status == "ok"
    field = (await _form(container, ws))["category"]
    assert field.kind == "select" and field.hint == "Required on Change tickets."
    with pytest.raises(InvalidInput) as plain:
        await writes.submit(Actor.system(ws), "new_ticket", {"subject": "x", "customer": str(acme), "board": CHANGE})
    assert plain.value.hint == "Fill in the category and try again."
