"""One-time admin sign-in links: stored hashed, single use even under a race, expiry, bounds on the lifetime."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlmodel import select

from core.admin_links import ADDRESS_BEAT, ADDRESS_STALE, AdminLinkService, LinkRefused, hash_token
from core.errors import InvalidInput
from core.redact import redact_text
from store.db import Database, Scope
from store.tables import AdminLoginLink, WebAddress
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


async def test_a_crashed_apps_address_is_ignored_then_dropped_while_a_running_one_beats(db: Database):
    """`deskbridge serve` records its address and beats it; one that crashed never removes its row. Its address
    must not be printed in a sign-in link once it stopped beating, and the next app to record or beat drops it."""
    now = [utcnow()]
    links = AdminLinkService(db, clock=lambda: now[0])
    await links.record_address("crashed", "http://10.0.0.9:8080")
    now[0] += timedelta(seconds=10)
    await links.record_address("alive", "http://127.0.0.1:8443")
    now[0] += timedelta(seconds=10)
    await links.record_address("crashed-later", "http://10.0.0.7:9000")  # newest start wins while it beats
    assert (await links.served_address())[0] == "http://10.0.0.7:9000"
    for _ in range(6):  # three minutes: only "alive" beats
        now[0] += ADDRESS_BEAT
        await links.beat_address("alive", "http://127.0.0.1:8443")
    assert (await links.served_address())[0] == "http://127.0.0.1:8443"
    async with db.read(Scope.system_wide()) as s:
        assert [r.instance_id for r in (await s.exec(select(WebAddress))).all()] == ["alive"]
    now[0] += ADDRESS_STALE + timedelta(seconds=1)  # and "alive" crashes too: no address, so the CLI falls back
    assert await links.served_address() is None


async def test_a_beat_puts_back_a_row_someone_removed(db: Database):
    now = [utcnow()]
    links = AdminLinkService(db, clock=lambda: now[0])
    await links.record_address("one", "http://127.0.0.1:8000")
    await links.forget_address("one")
    assert await links.served_address() is None
    now[0] += ADDRESS_BEAT
    await links.beat_address("one", "http://127.0.0.1:8000")
    assert await links.served_address() == ("http://127.0.0.1:8000", now[0])


async def test_serve_beats_its_address_until_it_stops(db: Database, monkeypatch: pytest.MonkeyPatch):
    """The heartbeat `deskbridge serve` runs beside the app (bot/cli/serve.py): each beat moves `seen_at`."""
    import bot.cli.serve as serve

    monkeypatch.setattr(serve, "ADDRESS_BEAT", timedelta(milliseconds=20))
    links = AdminLinkService(db)
    await links.record_address("me", "http://127.0.0.1:8000")
    beat = asyncio.create_task(serve._beat_address(SimpleNamespace(admin_links=links), "me",  # type: ignore[arg-type]
                                                   "http://127.0.0.1:8000"))
    seen = []
    for _ in range(3):
        await asyncio.sleep(0.1)
        async with db.read(Scope.system_wide()) as s:
            seen.append((await s.exec(select(WebAddress))).one().seen_at)
    beat.cancel()
    assert seen[0] < seen[1] < seen[2]
