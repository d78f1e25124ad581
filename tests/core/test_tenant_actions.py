"""Microsoft 365 quick actions through the real container (QuickActions -> outbox op -> OutboxWorker -> GraphClient)
against the httpx-transport Graph fake, on the test database (SQLite or PostgreSQL): grants, validation before
anything is queued, one op per intent, the temporary password (encrypted, erased when done, never audited), the
internal note, Graph's refusals explained in the dead letter, and 429 Retry-After retried."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.main import build
from bot.settings import Settings
from core.context import Actor
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.tenant_actions import AskAgain
from store.crypto import generate_key
from store.db import Scope
from store.enums import OutboxStatus
from store.tables import AuditLog, Contact, Customer, OutboxOp, PsaConnection, Ticket, TimelineEntry
from store.types import utcnow
from tests.factories import psa_backed
from tests.fakes.graph import GRAPH, LOGIN, FakeGraph, seed_acme

TENANT = "0b5d8f4e-1c2a-4c3b-9d8e-7f6a5b4c3d2e"
GLOBEX_TENANT = "globex.onmicrosoft.com"


@pytest.fixture
def graph() -> FakeGraph:
    g = FakeGraph()
    seed_acme(g, TENANT)
    globex = g.tenant(GLOBEX_TENANT)
    globex.users.append({"id": "g-jane", "displayName": "Jane at Globex", "userPrincipalName": "jane@acme.example",
                         "mail": "jane@acme.example", "accountEnabled": True, "onPremisesSyncEnabled": False})
    return g


@pytest.fixture
async def env(db_url, db, tmp_path, workspace_id, graph, tech):
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k", m365_client_id=graph.client_id,
                       m365_client_secret=graph.client_secret, m365_graph_url=GRAPH, m365_login_url=LOGIN,
                       run_scheduler=False, run_outbox_worker=False),
              transport=graph.transport)
    c.default_workspace_id = workspace_id
    setup = await psa_backed(db, workspace_id)
    tickets = {}
    async with db.write(Scope.workspace(workspace_id)) as s:
        for number, cust, email in ((6001, setup.customer_id, "jane@acme.example"),
                                    (6002, setup.customer_id, "bob@acme.example"),
                                    (6003, setup.other_customer_id, "jane@acme.example")):
            contact = Contact(workspace_id=workspace_id, customer_id=cust, name="C", email=email)
            s.add(contact)
            await s.flush()
            t = Ticket(workspace_id=workspace_id, number=number, external_id=str(number), customer_id=cust,
                       connection_id=setup.connection_id, contact_id=contact.id, subject="Locked out",
                       priority="high", priority_rank=1, stage="new", psa_status_id="10", psa_status_name="New")
            s.add(t)
            await s.flush()
            tickets[number] = t.id
    async with db.read(Scope.workspace(workspace_id)) as s:
        acme = await s.get(Customer, setup.customer_id)
        globex = await s.get(Customer, setup.other_customer_id)
    await c.m365.connect(workspace_id, acme, TENANT)
    await c.m365.connect(workspace_id, globex, GLOBEX_TENANT)
    admin = Actor(workspace_id=workspace_id, origin=tech.origin, display="slack:U9 (Ada)", is_admin=True)
    await c.quick_actions.grant(admin, tech.member_id)
    yield c, tickets, admin
    await c.aclose()


async def _ops(db, ws):
    async with db.read(Scope.workspace(ws)) as s:
        return list((await s.exec(select(OutboxOp).where(OutboxOp.kind == "tenant_action")
                                  .order_by(OutboxOp.id))).all())


async def _drain(c) -> None:
    await c.outbox_worker.drain()


async def test_reset_password_flow(env, db, workspace_id, tech, graph):
    c, tickets, _ = env
    done = await c.quick_actions.request(tech, tickets[6001], "reset_password", intent="click-1")
    pw = done.temporary_password
    assert pw and len(pw) == 16 and "must be changed at next sign-in" in done.confirmation
    [op] = await _ops(db, workspace_id)
    assert pw not in json.dumps(op.payload) and op.payload["password_ciphertext"]  # encrypted at rest
    assert op.payload["user_id"] == "u-jane" and op.payload["tenant_id"] == TENANT
    async with db.read(Scope.workspace(workspace_id)) as s:
        notes = (await s.exec(select(TimelineEntry).where(TimelineEntry.ticket_id == tickets[6001]))).all()
    assert [n.body for n in notes] == ["Microsoft 365 quick action: password of jane@acme.example reset (temporary "
                                       "password given to the technician; must be changed at next sign-in)."]
    assert notes[0].kind == "note_internal" and pw not in notes[0].body
    await _drain(c)
    assert graph.tenants[TENANT].writes == [("passwordProfile", "u-jane",
                                             {"password": pw, "forceChangePasswordNextSignIn": True})]
    [op] = await _ops(db, workspace_id)
    assert op.status == OutboxStatus.DONE.value and op.payload["password_ciphertext"] is None  # erased
    async with db.read(Scope.workspace(workspace_id)) as s:
        audits = (await s.exec(select(AuditLog).where(AuditLog.op_id == op.id))).all()
    assert [a.outcome for a in audits] == ["ok"] and audits[0].action == "graph reset_password"
    assert pw not in json.dumps(audits[0].request) and op.actor == "slack:U1 (Ana)"


async def test_one_write_per_intent(env, db, workspace_id, tech, graph):
    c, tickets, _ = env
    first = await c.quick_actions.request(tech, tickets[6001], "revoke_sessions", intent="click-7")
    again = await c.quick_actions.request(tech, tickets[6001], "revoke_sessions", intent="click-7")
    assert again.repeated and again.op_id == first.op_id and "Already asked" in again.confirmation
    assert len(await _ops(db, workspace_id)) == 1
    await _drain(c)
    await c.quick_actions.request(tech, tickets[6001], "revoke_sessions", intent="click-7")
    await _drain(c)
    assert graph.tenants[TENANT].writes == [("revokeSignInSessions", "u-jane", {})]
    await c.quick_actions.request(tech, tickets[6001], "revoke_sessions", intent="click-8")  # a new click: a new op
    assert len(await _ops(db, workspace_id)) == 2


async def test_who_may_act(env, db, workspace_id, tech, graph):
    c, tickets, admin = env
    await c.quick_actions.grant(admin, tech.member_id, allow=False)
    with pytest.raises(PermissionDenied, match="not allowed") as not_granted:
        await c.quick_actions.request(tech, tickets[6001], "revoke_sessions", intent="x1")
    from bot.cli.customer import app as customer_cli  # the hint names a command that exists

    assert "m365-grant" in {cmd.name for cmd in customer_cli.registered_commands}
    assert "`deskbridge customer m365-grant EMAIL`" in (not_granted.value.hint or "")
    with pytest.raises(PermissionDenied, match="Only an admin") as refused:
        await c.quick_actions.grant(tech, tech.member_id)
    assert "m365-grant" in (refused.value.hint or "")  # every refusal says what to do next
    with pytest.raises(NotFound, match="No such technician") as missing:
        await c.quick_actions.grant(admin, 999_999)
    assert "PSA sync" in (missing.value.hint or "")
    await c.quick_actions.grant(admin, tech.member_id)
    await c.quick_actions.grant(admin, tech.member_id)  # already granted: nothing changes, nothing audited
    async with db.read(Scope.workspace(workspace_id)) as s:  # every surface's grant is audited by the service
        rows = [r for r in (await s.exec(select(AuditLog).order_by(AuditLog.id))).all() if r.action.startswith("m365.")]
    assert [(r.action, r.outcome, r.actor) for r in rows] == [
        ("m365.grant", "changed", admin.display), ("m365.revoke", "changed", admin.display),
        ("m365.grant", "changed", admin.display)]
    with pytest.raises(PermissionDenied, match="never in a customer channel"):
        await c.quick_actions.request(tech.scoped_to_customer(1), tickets[6001], "revoke_sessions", intent="x2")
    with pytest.raises(PermissionDenied, match="never in a customer channel"):
        await c.quick_actions.request(tech, tickets[6001], "revoke_sessions", intent="x3", audience="customer")
    end_user = Actor(workspace_id=workspace_id, origin=tech.origin, is_member=False, display="contact")
    with pytest.raises(PermissionDenied):
        await c.quick_actions.request(end_user, tickets[6001], "revoke_sessions", intent="x4")
    assert await _ops(db, workspace_id) == [] and graph.tenants[TENANT].writes == []


async def test_validated_before_anything_is_queued(env, db, workspace_id, tech, graph):
    c, tickets, _ = env
    with pytest.raises(InvalidInput, match="synced from on-premises") as e:
        await c.quick_actions.request(tech, tickets[6002], "reset_password", intent="v1")
    assert "Active Directory" in (e.value.hint or "")
    with pytest.raises(InvalidInput, match="not one of the user's Intune devices"):
        await c.quick_actions.request(tech, tickets[6001], "sync_device", device_id="d-other", intent="v2")
    with pytest.raises(InvalidInput, match="not a quick action"):
        await c.quick_actions.request(tech, tickets[6001], "delete_user", intent="v3")
    assert await _ops(db, workspace_id) == []
    done = await c.quick_actions.request(tech, tickets[6001], "sync_device", device_id="d-1", intent="v4")
    assert done.confirmation == "Sync asked for ACME-LT-1."
    await _drain(c)
    assert graph.tenants[TENANT].writes == [("syncDevice", "d-1", {})]


async def test_another_customers_tenant_is_never_touched(env, db, workspace_id, tech, graph):
    c, tickets, _ = env
    # Ticket 6003 is Globex's: its contact's address names jane@acme.example, but the tenant is Globex's.
    await c.quick_actions.request(tech, tickets[6003], "revoke_sessions", intent="g1")
    await _drain(c)
    assert graph.tenants[TENANT].writes == []
    assert graph.tenants[GLOBEX_TENANT].writes == [("revokeSignInSessions", "g-jane", {})]
    with pytest.raises(InvalidInput, match="not one of the user's Intune devices"):  # Acme's device, Globex ticket
        await c.quick_actions.request(tech, tickets[6003], "sync_device", device_id="d-0", intent="g2")


async def test_graph_refusals_are_explained_in_the_dead_letter(env, db, workspace_id, tech, graph):
    c, tickets, _ = env
    graph.tenants[TENANT].roles.clear()  # the app has the permission but not the User Administrator role
    await c.quick_actions.request(tech, tickets[6001], "reset_password", intent="p1")
    graph.tenants[TENANT].permissions.discard("User.RevokeSessions.All")
    await c.quick_actions.request(tech, tickets[6001], "revoke_sessions", intent="p2")
    await _drain(c)
    reset, revoke = await _ops(db, workspace_id)
    assert reset.status == revoke.status == OutboxStatus.DEAD.value
    assert "lacks the application permission User-PasswordProfile.ReadWrite.All and the User Administrator role" \
        in (reset.last_error or "")
    assert "Ask the customer's admin" in (reset.last_error or "") and reset.payload["password_ciphertext"] is None
    assert "User.RevokeSessions.All" in (revoke.last_error or "")
    assert graph.tenants[TENANT].writes == []


async def test_throttled_action_is_retried_after_retry_after(env, db, workspace_id, tech, graph):
    c, tickets, _ = env
    await c.quick_actions.request(tech, tickets[6001], "revoke_sessions", intent="t1")
    graph.throttle(3, "0")  # the client's own retries (3) use them up; the op is then retried by the outbox,
    graph.throttle(1, "30")  # no sooner than the last answer's Retry-After (a fixed time: not a jitter race)
    await _drain(c)
    [op] = await _ops(db, workspace_id)
    assert op.status == OutboxStatus.PENDING.value and "throttling" in (op.last_error or "")
    assert op.next_attempt_at >= utcnow() + timedelta(seconds=20)
    assert graph.tenants[TENANT].writes == []
    async with db.write(Scope.workspace(workspace_id)) as s:
        row = await s.get(OutboxOp, op.id)
        row.next_attempt_at = utcnow() - timedelta(seconds=1)
        s.add(row)
    await _drain(c)
    [op] = await _ops(db, workspace_id)
    assert op.status == OutboxStatus.DONE.value and op.attempts == 2
    assert graph.tenants[TENANT].writes == [("revokeSignInSessions", "u-jane", {})]


async def test_a_second_reset_needs_its_own_confirmation(env, db, workspace_id, tech, graph):
    """One intent, one write: another click on Reset moments later (any technician) queues nothing until the
    technician confirms that second reset; a redelivered click is still the first op; a dead reset asks nothing."""
    c, tickets, admin = env
    first = await c.quick_actions.request(tech, tickets[6001], "reset_password", intent="r1")
    assert first.temporary_password
    with pytest.raises(AskAgain, match="jane@acme.example's password is being reset: asked less than a minute ago "
                                       r"by slack:U1 \(Ana\). Nothing was done") as asked:
        await c.quick_actions.request(admin, tickets[6001], "reset_password", intent="r2")
    assert asked.value.question.startswith("Reset again?") and asked.value.hint == asked.value.question
    again = await c.quick_actions.request(tech, tickets[6001], "reset_password", intent="r1")  # redelivered
    assert again.repeated and again.op_id == first.op_id and again.temporary_password is None
    assert len(await _ops(db, workspace_id)) == 1
    await _drain(c)
    with pytest.raises(AskAgain, match="password was reset: asked"):  # done now: still asked, still nothing queued
        await c.quick_actions.request(tech, tickets[6001], "reset_password", intent="r3")
    assert len(await _ops(db, workspace_id)) == 1 and len(graph.tenants[TENANT].writes) == 1
    second = await c.quick_actions.request(tech, tickets[6001], "reset_password", intent="r3", again=True)
    assert second.temporary_password and second.temporary_password != first.temporary_password
    await _drain(c)
    assert [w[2]["password"] for w in graph.tenants[TENANT].writes] == [first.temporary_password,
                                                                       second.temporary_password]
    # Other actions and other users are not held back; nor is a reset after the window, or after a dead one.
    await c.quick_actions.request(tech, tickets[6001], "revoke_sessions", intent="r4")
    await c.quick_actions.request(tech, tickets[6003], "reset_password", intent="r5")  # Globex's jane
    async with db.write(Scope.workspace(workspace_id)) as s:
        for op in await _ops(db, workspace_id):
            row = await s.get(OutboxOp, op.id)
            row.created_at = utcnow() - timedelta(minutes=16)
            s.add(row)
    assert (await c.quick_actions.request(tech, tickets[6001], "reset_password", intent="r6")).temporary_password
    graph.tenants[TENANT].roles.clear()
    await _drain(c)  # r6 dies (no User Administrator role): a dead reset does not hold the next one
    assert (await c.quick_actions.request(tech, tickets[6001], "reset_password", intent="r7")).temporary_password


async def test_a_standalone_ticket_needs_no_psa_connection(env, db, workspace_id, tech, graph):
    """Issue 23 follow-up: a standalone ticket's quick action is an op without a PSA connection (none is usable in
    the workspace here: disabled, not the default), delivered to Graph, audited, and a dead one is listed, shown
    and redriven by the operator's tools like any other."""
    c, tickets, _ = env
    async with db.write(Scope.workspace(workspace_id)) as s:
        row = await s.get(Ticket, tickets[6001])
        row.connection_id, row.external_id = None, None
        s.add(row)
        for conn in (await s.exec(select(PsaConnection))).all():
            conn.is_default, conn.enabled = False, False
            s.add(conn)
    done = await c.quick_actions.request(tech, tickets[6001], "revoke_sessions", intent="s1")
    await _drain(c)
    [op] = await _ops(db, workspace_id)
    assert op.id == done.op_id and op.status == OutboxStatus.DONE.value and op.connection_id is None
    assert graph.tenants[TENANT].writes == [("revokeSignInSessions", "u-jane", {})]
    async with db.read(Scope.workspace(workspace_id)) as s:
        audit = (await s.exec(select(AuditLog).where(AuditLog.op_id == op.id))).all()
    assert [(a.outcome, a.connection_id) for a in audit] == [("ok", None)]

    roles = set(graph.tenants[TENANT].roles)
    graph.tenants[TENANT].roles.clear()  # the next one is refused by Graph: dead
    dead = await c.quick_actions.request(tech, tickets[6001], "reset_password", intent="s2")
    await _drain(c)
    page = await c.outbox_admin.list_ops(workspace_id, status="dead")
    assert [(v.id, v.connection_id) for v in page.items] == [(dead.op_id, None)]
    shown = await c.outbox_admin.get_op(workspace_id, dead.op_id)
    assert shown.op.connection_id is None and shown.audit and shown.op.why
    assert (await c.outbox_admin.list_ops(workspace_id, status="dead", connection_id=1)).items == ()
    graph.tenants[TENANT].roles.update(roles)  # the role is back: the operator redrives it; the worker claims it
    await c.outbox_admin.redrive(workspace_id, dead.op_id, "cli:ops")
    await _drain(c)  # and says why a reset cannot be made again (its password is not kept), not a missing connection
    again = await c.outbox_admin.get_op(workspace_id, dead.op_id)
    assert again.op.status == OutboxStatus.DEAD.value and len(again.audit) > len(shown.audit)
    assert "ask for a new reset" in (again.op.last_error or "") and "connection" not in (again.op.last_error or "")


async def test_two_reset_clicks_at_the_same_instant_make_one_reset(env, db, workspace_id, tech, graph):
    """The check and the insert are one transaction on the locked ticket row: of two simultaneous first clicks
    (two technicians), one resets and the other is asked again."""
    import asyncio

    c, tickets, admin = env
    graph.delay = 0.05  # every click waits on Graph side by side, so all three reach the check together
    results = await asyncio.gather(
        *(c.quick_actions.request(who, tickets[6001], "reset_password", intent=f"same-instant-{i}")
          for i, who in enumerate((tech, admin, tech))), return_exceptions=True)
    accepted = [r for r in results if not isinstance(r, BaseException)]
    asked = [r for r in results if isinstance(r, AskAgain)]
    assert len(accepted) == 1 and len(asked) == 2 and accepted[0].temporary_password
    assert len(await _ops(db, workspace_id)) == 1
