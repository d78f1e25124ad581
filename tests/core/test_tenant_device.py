"""The device a ticket is about, from the PSA's configuration item (Autotask `configurationItemID`), matched to the
user's Intune device; and that device's activity. Real composition root, the Autotask fake (schema from Autotask's
swagger) synced into the test database, and the Graph fake, both on httpx transports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bot.main import build
from bot.settings import Settings
from core.context import Actor
from store.crypto import generate_key
from store.db import Scope
from store.enums import Origin
from store.tables import Customer, Ticket
from tests.fakes.autotask import FakeAutotask, FakeClock
from tests.fakes.graph import GRAPH, LOGIN, FakeGraph, _Routed, seed_acme

TENANT = "0b5d8f4e-1c2a-4c3b-9d8e-7f6a5b4c3d2e"
CI_ROUTE = "GET /ConfigurationItems/{id}"


@pytest.fixture
async def env(db_url, tmp_path, workspace_id):
    graph, at = FakeGraph(), FakeAutotask(clock=FakeClock(datetime.now(UTC)))
    seed_acme(graph, TENANT)
    acme = next(c["id"] for c in at.tables["Companies"].values() if c["companyName"] == "Acme Corp")
    jane = at.add_contact(acme, "Jane", "Doe", "jane@acme.example")
    by_serial = at.add_configuration_item(acme, "Jane's laptop", serial="5cg141acme")  # Intune's d-1, any case
    by_host = at.add_configuration_item(acme, "Reception PC", hostname="ACME-LT-2")  # the RMM's host name
    unknown = at.add_configuration_item(acme, "Boardroom screen", serial="XYZ-1")
    tickets = {name: at.add_ticket(f"{name} ticket", companyID=acme, contactID=jane, configurationItemID=ci)["id"]
               for name, ci in (("serial", by_serial), ("host", by_host), ("unknown", unknown))}
    tickets["none"] = at.add_ticket("No device", companyID=acme, contactID=jane)["id"]
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k", m365_client_id=graph.client_id,
                       m365_client_secret=graph.client_secret, m365_graph_url=GRAPH, m365_login_url=LOGIN,
                       run_scheduler=False, run_outbox_worker=False),
              transport=_Routed(graph.transport, at.transport()))
    c.default_workspace_id = workspace_id
    conn, _ = await c.connections.add(workspace_id, kind="autotask", name="autotask", settings=at.settings(),
                                      credentials=at.credentials())
    assert (await c.sync.run(conn.id)).ok
    async with c.db.read(Scope.workspace(workspace_id)) as s:
        customer = (await s.exec(select(Customer).where(Customer.name == "Acme Corp"))).one()
        ids = {name: (await s.exec(select(Ticket.id).where(Ticket.external_id == str(ext)))).one()
               for name, ext in tickets.items()}
    await c.m365.connect(workspace_id, customer, TENANT)
    tech = Actor(workspace_id=workspace_id, origin=Origin.SLACK, display="slack:U1 (Ana)", is_admin=True)
    yield c, at, graph, ids, tech
    await c.aclose()


async def test_the_configuration_item_names_the_intune_device(env):
    c, at, graph, ids, tech = env
    ctx = c.tenant_context
    view = await ctx.user_view(tech, ids["serial"])
    assert view.user is not None and view.user.upn == "jane@acme.example"
    assert view.device_id == "d-1" and not [n for n in view.notes if n.startswith("Device:")]  # by serial number
    assert at.count(CI_ROUTE) == 1
    assert (await ctx.user_view(tech, ids["host"])).device_id == "d-2"  # by the RMM host name
    unknown = await ctx.user_view(tech, ids["unknown"])
    assert unknown.device_id is None
    assert "Device: the ticket's device Boardroom screen (the PSA's configuration item) is not one of this user's " \
           "Intune devices." in unknown.notes
    none = await ctx.user_view(tech, ids["none"])
    assert none.device_id is None and not [n for n in none.notes if n.startswith("Device:")]
    calls = at.count(CI_ROUTE)
    await ctx.user_view(tech, ids["serial"])  # the item is cached like the view: no second read
    assert calls == at.count(CI_ROUTE) == 3
    # A technician's choice wins over the PSA's item
    await ctx.choose(tech, ids["serial"], "jane@acme.example", device_id="d-0")
    assert (await ctx.user_view(tech, ids["serial"])).device_id == "d-0"


async def test_device_activity_check_in_and_sign_ins_from_it(env):
    c, at, graph, ids, tech = env
    activity = await c.tenant_context.activity(tech, ids["serial"])
    assert activity.device is not None and activity.device.name == "ACME-LT-1"
    assert activity.device.last_sync == datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    assert activity.device.enrolled == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    # Jane's six sign-ins: si-1, si-3 and si-5 were made from ACME-LT-1 (Entra device id aad-1)
    assert [s.ip for s in activity.device_sign_ins or ()] == ["203.0.113.5", "203.0.113.3", "203.0.113.1"]
    assert activity.sign_ins is not None and len(activity.sign_ins) == 6
    # (read with the documented userId filter, which the fake enforces, and matched on the device here)
    assert sum(1 for _, path in graph.calls if path.endswith("/auditLogs/signIns")) == 1
    no_device = await c.tenant_context.activity(tech, ids["none"])
    assert no_device.device is None and no_device.device_sign_ins is None and no_device.sign_ins
    graph.tenants[TENANT].premium = False  # without Entra ID P1: no sign-ins, the check-in is still shown
    activity = await c.tenant_context.activity(tech, ids["serial"])
    assert activity.device is not None and activity.device_sign_ins is None and activity.sign_ins is None
    assert "Sign-ins: needs Entra ID P1 in this tenant." in activity.notes


async def _synced(db_url, tmp_path, workspace_id, graph, psa, kind):
    """The real composition root on the test database with Graph and `psa` on httpx transports, the PSA added
    as a connection and synced once."""
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k", m365_client_id=graph.client_id,
                       m365_client_secret=graph.client_secret, m365_graph_url=GRAPH, m365_login_url=LOGIN,
                       run_scheduler=False, run_outbox_worker=False),
              transport=_Routed(graph.transport, psa.transport()))
    conn, _ = await c.connections.add(workspace_id, kind=kind, name=kind, settings=psa.settings(),
                                      credentials=psa.credentials())
    assert (await c.sync.run(conn.id)).ok
    return c


async def test_a_halopsa_asset_names_the_intune_device(db_url, tmp_path, workspace_id):
    """HaloPSA links assets to a ticket (`Faults.assets`, `Device_List` with `intune_id` from Halo's Intune
    integration): the asset's Intune id picks the device, else its main field as a name."""
    from tests.fakes.halopsa import FakeHalo
    from tests.fakes.halopsa_http import HaloClock

    graph, halo = FakeGraph(), FakeHalo(clock=HaloClock(datetime.now(UTC)))
    seed_acme(graph, TENANT)
    halo.users[501]["emailaddress"] = "jane@acme.example"  # Acme's end user is Jane
    by_intune = halo.add_ticket("Laptop slow", client_id=12, user_id=501)["id"]
    halo.add_asset(12, "Asset 77", intune_id="d-0", ticket_id=by_intune)
    by_name = halo.add_ticket("Screen flickers", client_id=12, user_id=501)["id"]
    halo.add_asset(12, "ACME-LT-2", ticket_id=by_name)
    elsewhere = halo.add_ticket("Dock broken", client_id=12, user_id=501)["id"]
    halo.add_asset(12, "Reception dock", ticket_id=elsewhere)
    plain = halo.add_ticket("Password expired", client_id=12, user_id=501)["id"]
    c = await _synced(db_url, tmp_path, workspace_id, graph, halo, "halopsa")
    try:
        async with c.db.read(Scope.workspace(workspace_id)) as s:
            ids = {ext: (await s.exec(select(Ticket.id).where(Ticket.external_id == str(ext)))).one()
                   for ext in (by_intune, by_name, elsewhere, plain)}
            customer = await s.get(Customer, (await s.get(Ticket, ids[plain])).customer_id)
        await c.m365.connect(workspace_id, customer, TENANT)
        tech = Actor(workspace_id=workspace_id, origin=Origin.SLACK, display="slack:U1 (Ana)", is_admin=True)
        ctx = c.tenant_context
        assert (await ctx.user_view(tech, ids[by_intune])).device_id == "d-0"
        assert (await ctx.user_view(tech, ids[by_name])).device_id == "d-2"
        other = await ctx.user_view(tech, ids[elsewhere])
        assert other.device_id is None and "Device: the ticket's device Reception dock (the PSA's configuration " \
                                          "item) is not one of this user's Intune devices." in other.notes
        none = await ctx.user_view(tech, ids[plain])
        assert none.user is not None and none.device_id is None and not [n for n in none.notes if "Device:" in n]
    finally:
        await c.aclose()


async def test_a_connectwise_configuration_names_the_intune_device(db_url, tmp_path, workspace_id):
    """ConnectWise links configurations to a ticket (`/service/tickets/{id}/configurations`, read in full from
    `/company/configurations/{id}`): the first one's serial number, else its name, picks the Intune device."""
    from tests.fakes.connectwise import FakeConnectWise

    graph, cw = FakeGraph(), FakeConnectWise()
    seed_acme(graph, TENANT)
    acme = next(cid for cid, c in cw.companies.items() if c["name"] == "Acme Corp")
    jane = cw.add_contact(acme, "Jane", "Doe", "jane@acme.example")
    made = {name: cw.add_ticket(f"{name} ticket", company={"id": acme}, contact={"id": jane})["id"]
            for name in ("serial", "name", "elsewhere", "plain")}
    cw.add_configuration("Jane's laptop", serial="5cg141acme", company_id=acme, ticket_id=made["serial"])
    cw.add_configuration("Spare dock", serial="DOCK-9", company_id=acme, ticket_id=made["serial"])  # not the first
    cw.add_configuration("ACME-LT-2", company_id=acme, ticket_id=made["name"])
    gone = cw.add_configuration("Reception dock", company_id=acme, ticket_id=made["elsewhere"])
    c = await _synced(db_url, tmp_path, workspace_id, graph, cw, "connectwise")
    try:
        async with c.db.read(Scope.workspace(workspace_id)) as s:
            ids = {name: (await s.exec(select(Ticket.id).where(Ticket.external_id == str(ext)))).one()
                   for name, ext in made.items()}
            customer = (await s.exec(select(Customer).where(Customer.name == "Acme Corp"))).one()
        await c.m365.connect(workspace_id, customer, TENANT)
        tech = Actor(workspace_id=workspace_id, origin=Origin.SLACK, display="slack:U1 (Ana)", is_admin=True)
        ctx = c.tenant_context
        assert (await ctx.user_view(tech, ids["serial"])).device_id == "d-1"  # by serial number, any case
        assert (await ctx.user_view(tech, ids["name"])).device_id == "d-2"  # by name (the host name)
        other = await ctx.user_view(tech, ids["elsewhere"])
        assert other.device_id is None and "Device: the ticket's device Reception dock (the PSA's configuration " \
                                          "item) is not one of this user's Intune devices." in other.notes
        none = await ctx.user_view(tech, ids["plain"])
        assert none.user is not None and none.device_id is None and not [n for n in none.notes if "Device:" in n]
        assert gone["id"] in cw.configurations
        reads = [r for r in cw.requests if r.route == "/company/configurations/{id}"]
        assert {r.query.get("fields") for r in reads} == {"id,name,serialNumber,deviceIdentifier"}
        assert len(reads) == cw.count("GET /company/configurations/{id}") == 3  # the plain ticket: its list only
        assert cw.count("GET /service/tickets/{id}/configurations") == 4
    finally:
        await c.aclose()
