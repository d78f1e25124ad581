"""The console's `context` command: the M365 quick view of a ticket's contact, through the real container
(settings -> DirectoryPool -> GraphClient) against the httpx-transport Graph fake; and its pure rendering."""

from __future__ import annotations

import pytest

from bot.console.context import render_user_context
from bot.console.session import ConsoleSession
from bot.main import build
from bot.settings import Settings
from connectors.tenant import DirectoryUser, MfaStatus
from core.tenant_context import UserQuickView
from store.crypto import generate_key
from store.db import Scope
from store.tables import Contact, Customer, Ticket
from tests.fakes.graph import GRAPH, LOGIN, FakeGraph, seed_acme

TENANT = "0b5d8f4e-1c2a-4c3b-9d8e-7f6a5b4c3d2e"


@pytest.fixture
def graph() -> FakeGraph:
    g = FakeGraph()
    seed_acme(g, TENANT)
    return g


@pytest.fixture
async def container(db_url, tmp_path, workspace_id, graph):
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k", m365_client_id=graph.client_id,
                       m365_client_secret=graph.client_secret, m365_graph_url=GRAPH, m365_login_url=LOGIN),
              transport=graph.transport)
    c.default_workspace_id = workspace_id
    yield c
    await c.aclose()


async def test_context_shows_the_contacts_m365_user(container, db, workspace_id, graph):
    async with db.write(Scope.workspace(workspace_id)) as s:
        acme = Customer(workspace_id=workspace_id, identifier="ACME", name="Acme")
        s.add(acme)
        await s.flush()
        jane = Contact(workspace_id=workspace_id, customer_id=acme.id, name="Jane", email="jane@acme.example")
        s.add(jane)
        await s.flush()
        s.add(Ticket(workspace_id=workspace_id, number=7001, customer_id=acme.id, contact_id=jane.id,
                     subject="Laptop not compliant", priority="high", priority_rank=1, stage="new"))
    await container.m365.connect(workspace_id, acme, TENANT)
    out: list[str] = []

    async def no_input(_: str) -> str | None:
        return None

    console = ConsoleSession(container, read=no_input, write=out.append, user_id="U1")
    await console.start()
    await console.handle("context")
    assert out[-1] == "No ticket is open. Use context <ticket number>."
    await console.handle("context 7001")
    text = out[-1]
    assert "Microsoft 365 — Jane Doe <jane@acme.example>" in text
    assert "Account: enabled · cloud-only · last sign-in 2026-12-06 08:15 UTC" in text
    assert "MFA: registered (microsoftAuthenticatorPush, mobilePhone; default microsoftAuthenticatorPush)" in text
    assert "Licences: Microsoft 365 Business Premium, Power BI (free), WEIRD_NEW_SKU" in text
    assert "ACME-LT-2  Windows 10.0.22631.4460  noncompliant  NOT encrypted" in text
    assert graph.token_requests == 1 and graph.client_secret not in "\n".join(out)


def test_render_with_gaps():
    view = UserQuickView("t", "bob@acme.example",
                         user=DirectoryUser("u", "Bob Roe", "bob@acme.example", None, False, True),
                         mfa=MfaStatus(None, ("mobilePhone",)), licences=(), devices=None,
                         notes=("Sign-in: needs Entra ID P1 in this tenant.",
                                "Devices: needs Intune in this tenant."))
    text = render_user_context(view)
    assert text.splitlines() == [
        "Microsoft 365 — Bob Roe <bob@acme.example>",
        "  Account: DISABLED · synced from on-premises AD",
        "  MFA: methods (mobilePhone)",
        "  Licences: none",
        "  Note: Sign-in: needs Entra ID P1 in this tenant.",
        "  Note: Devices: needs Intune in this tenant.",
    ]
    assert render_user_context(UserQuickView(None, None, notes=("x",))).splitlines() == [
        "Microsoft 365: no user shown.", "  Note: x"]
    assert "last sign-in never" in render_user_context(
        UserQuickView("t", "a", user=DirectoryUser("u", "A", "a", None, True, False),
                      last_sign_in=None))


async def test_console_activity_apps_change_user_and_confirmed_reset(container, db, workspace_id, graph):
    from sqlmodel import select

    from store.tables import OutboxOp
    from tests.factories import psa_backed

    setup = await psa_backed(db, workspace_id)
    async with db.write(Scope.workspace(workspace_id)) as s:
        acme = await s.get(Customer, setup.customer_id)
        jane = Contact(workspace_id=workspace_id, customer_id=acme.id, name="Jane", email="jane@acme.example")
        s.add(jane)
        await s.flush()
        s.add(Ticket(workspace_id=workspace_id, number=7002, external_id="7002", customer_id=acme.id,
                     contact_id=jane.id, connection_id=setup.connection_id, subject="Locked out", priority="high",
                     priority_rank=1, stage="new", psa_status_id="10", psa_status_name="New"))
    await container.m365.connect(workspace_id, acme, TENANT)
    out: list[str] = []
    answers = iter(["no", "yes", "yes", "no", "yes", "yes"])

    async def read(_: str) -> str | None:
        return next(answers)

    console = ConsoleSession(container, read=read, write=out.append, user_id="U1")
    await console.start()
    actor, _ = await console.actor()
    if not actor.is_admin:  # the console's user runs quick actions only when granted
        await container.quick_actions.grant(container.system_actor(), actor.member_id)
    await console.handle("/ticket 7002")
    await console.handle("context activity")
    assert "Recent activity — jane@acme.example" in out[-1] and "FAILED  Outlook" in out[-1]
    assert "Reset user password  by Deskbridge" in out[-1]
    await console.handle("context apps d-0")
    assert "7-Zip 23.01 (Igor Pavlov)" in out[-1] and "3 app(s) detected by Intune" in out[-1]
    await console.handle("context reset")
    assert out[-1] == "Nothing was done." and graph.tenants[TENANT].writes == []
    await console.handle("context reset")
    assert "Password reset for jane@acme.example queued" in out[-1]
    pw = out[-1].split("only here): ")[1]
    await container.outbox_worker.drain()
    assert graph.tenants[TENANT].writes[0][2]["password"] == pw
    async with db.read(Scope.workspace(workspace_id)) as s:
        assert len((await s.exec(select(OutboxOp).where(OutboxOp.kind == "tenant_action"))).all()) == 1
    await console.handle("context reset")  # a second reset moments later: asked again, and declined
    assert "password was reset: asked less than a minute ago" in out[-2] and out[-1] == "Nothing was done."
    await console.handle("context reset")  # asked again, and confirmed: a second reset
    assert "Password reset for jane@acme.example queued" in out[-1] and pw not in out[-1]
    async with db.read(Scope.workspace(workspace_id)) as s:
        assert len((await s.exec(select(OutboxOp).where(OutboxOp.kind == "tenant_action"))).all()) == 2
    await console.handle("context user carol@acme.example")
    assert "Microsoft 365 — Carol Poe <carol.poe@acmecorp.onmicrosoft.com>" in out[-1]
    await console.handle("context user nobody@acme.example")
    assert "No user nobody@acme.example" in out[-1]
