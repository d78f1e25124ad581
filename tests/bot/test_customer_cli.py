"""`deskbridge customer connect-m365 ACME --tenant ...`: stores the tenant (real SQLite), prints the consent
link from settings, never the client secret; bad ids and a tenant of another customer are refused."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from bot.cli import app
from core.m365_tenants import M365TenantService
from core.workspaces import DirectoryService, WorkspaceService
from store.db import Database

runner = CliRunner()
TENANT = "0b5d8f4e-1c2a-4c3b-9d8e-7f6a5b4c3d2e"


def invoke(*args: str):
    return runner.invoke(app, list(args))


def _setup(env) -> None:
    assert invoke("customer", "show-m365", "ACME").exit_code != 0  # bootstraps the workspace; no ACME yet

    async def add() -> None:
        db = Database(env["DESKBRIDGE_DATABASE_URL"])
        try:
            [w] = await WorkspaceService(db).list()
            await DirectoryService(db).add_customer(w.id, identifier="ACME", name="Acme Corp")
            await DirectoryService(db).add_customer(w.id, identifier="GLOBEX", name="Globex")
        finally:
            await db.dispose()

    asyncio.run(add())


def _stored(env, ident: str) -> str | None:
    async def read() -> str | None:
        db = Database(env["DESKBRIDGE_DATABASE_URL"])
        try:
            [w] = await WorkspaceService(db).list()
            customer = await DirectoryService(db).find_customer(w.id, ident)
            return await M365TenantService(db).tenant_of(w.id, customer.id)
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_connect_m365_stores_the_tenant_and_prints_the_consent_link(env, monkeypatch):
    monkeypatch.setenv("DESKBRIDGE_M365_CLIENT_ID", "11111111-2222-3333-4444-555555555555")
    monkeypatch.setenv("DESKBRIDGE_M365_CLIENT_SECRET", "very-secret-m365-value")
    _setup(env)
    r = invoke("customer", "connect-m365", "ACME", "--tenant", TENANT.upper())
    assert r.exit_code == 0, r.output
    assert (f"https://login.microsoftonline.com/{TENANT}/v2.0/adminconsent?"
            "client_id=11111111-2222-3333-4444-555555555555&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default") in r.stdout
    assert "very-secret-m365-value" not in r.output
    assert _stored(env, "ACME") == TENANT and _stored(env, "GLOBEX") is None
    assert TENANT in invoke("customer", "show-m365", "ACME").stdout

    r = invoke("customer", "connect-m365", "ACME", "--tenant", "acme.onmicrosoft.com")  # changed
    assert r.exit_code == 0 and _stored(env, "ACME") == "acme.onmicrosoft.com"

    r = invoke("customer", "connect-m365", "GLOBEX", "--tenant", "acme.onmicrosoft.com")
    assert r.exit_code == 1 and "another customer" in r.output and _stored(env, "GLOBEX") is None

    r = invoke("customer", "connect-m365", "ACME", "--tenant", "not a tenant!")
    assert r.exit_code == 1 and "not a Microsoft 365 tenant id" in r.output
    assert _stored(env, "ACME") == "acme.onmicrosoft.com"


def test_without_an_app_the_tenant_is_stored_and_the_setting_named(env):
    _setup(env)
    r = invoke("customer", "connect-m365", "ACME", "--tenant", TENANT)
    assert r.exit_code == 0, r.output
    assert "DESKBRIDGE_M365_CLIENT_ID" in r.stdout and "adminconsent" not in r.stdout
    assert _stored(env, "ACME") == TENANT


def test_m365_grant_and_revoke_and_a_docs_platform_that_refuses(env, monkeypatch):
    _setup(env)

    async def add_member() -> None:
        db = Database(env["DESKBRIDGE_DATABASE_URL"])
        try:
            [w] = await WorkspaceService(db).list()
            await DirectoryService(db).add_member(w.id, name="Ana Tech", email="ana@msp.example")
        finally:
            await db.dispose()

    def granted() -> bool:
        async def read() -> bool:
            db = Database(env["DESKBRIDGE_DATABASE_URL"])
            try:
                from sqlmodel import select

                from store.db import Scope
                from store.tables import M365ActionGrant
                [w] = await WorkspaceService(db).list()
                async with db.read(Scope.workspace(w.id)) as s:
                    return (await s.exec(select(M365ActionGrant))).first() is not None
            finally:
                await db.dispose()

        return asyncio.run(read())

    asyncio.run(add_member())
    r = invoke("customer", "m365-grant", "ana@msp.example")
    assert r.exit_code == 0 and "Ana Tech may now run Microsoft 365 quick actions." in r.stdout and granted()
    r = invoke("customer", "m365-grant", "nobody@msp.example")
    assert r.exit_code == 1 and "No technician with e-mail nobody@msp.example" in r.output
    r = invoke("customer", "m365-revoke", "ana@msp.example")
    assert r.exit_code == 0 and not granted()

    # No Hudu answers at this address: nothing is saved, and the key never appears in the output
    monkeypatch.setenv("DESKBRIDGE_DOCS_API_KEY", "hudu-secret-key-123")
    r = invoke("customer", "docs-platform", "hudu", "--url", "http://127.0.0.1:9")
    assert r.exit_code == 1 and "Hudu did not accept these settings" in r.output and "Nothing was saved" in r.output
    assert "hudu-secret-key-123" not in r.output
