"""One-time admin sign-in links: stored hashed, single use even under a race, expiry, bounds on the lifetime."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from core.admin_links import AdminLinkService, LinkRefused, hash_token
from core.errors import InvalidInput
from core.redact import redact_text
from store.db import Database, Scope
from store.tables import AdminLoginLink
from store.types import utcnow


async def test_two_racing_redeems_of_one_link_sign_in_once(db: Database, workspace_id: int):
    links = AdminLinkService(db)
    token, expires = await links.create(workspace_id)
    assert timedelta(minutes=14) < expires - utcnow() <= timedelta(minutes=15)
    results = await asyncio.gather(links.redeem(token), links.redeem(token), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["LinkRefused", "int"]
    assert workspace_id in results
    async with db.read(Scope.workspace(workspace_id)) as s:
        row = (await s.exec(select(AdminLoginLink))).one()
    assert row.token_hash == hash_token(token) and row.used_at is not None


async def test_link_expires_and_lifetime_is_bounded(db: Database, workspace_id: int):
    now = [utcnow()]
    links = AdminLinkService(db, clock=lambda: now[0])
    token, _ = await links.create(workspace_id, ttl=timedelta(minutes=5))
    now[0] += timedelta(minutes=5)
    with pytest.raises(LinkRefused):
        await links.redeem(token)
    for ttl in (timedelta(0), timedelta(hours=25)):
        with pytest.raises(InvalidInput):
            await links.create(workspace_id, ttl=ttl)
    with pytest.raises(LinkRefused):
        await links.redeem(token.replace("dbl_", "xyz_"))


async def test_a_link_is_masked_in_logs_and_error_text(db: Database, workspace_id: int):
    token, _ = await AdminLinkService(db).create(workspace_id)
    assert redact_text(f"GET /admin/login?token={token} 200") == "GET /admin/login?token=[redacted] 200"
    assert redact_text(f"the link ({token}) was pasted") == "the link (dbl_[redacted]) was pasted"


async def test_links_dead_for_a_week_are_deleted_when_a_new_one_is_made(db: Database, workspace_id: int):
    now = [utcnow() - timedelta(days=8)]
    links = AdminLinkService(db, clock=lambda: now[0])
    await links.create(workspace_id)
    now[0] += timedelta(days=6)
    await links.create(workspace_id)
    now[0] += timedelta(days=2)
    await links.create(workspace_id)
    async with db.read(Scope.workspace(workspace_id)) as s:
        assert len((await s.exec(select(AdminLoginLink))).all()) == 2
