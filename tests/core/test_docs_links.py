"""DocsService through the real container against the loopback Hudu and IT Glue fakes (real HTTP on 127.0.0.1),
on the test database: settings tested before they are saved, the key encrypted at rest and never logged, links
found by PSA id from both platforms in parallel and cached, a failing platform left out, technicians only."""

from __future__ import annotations

import logging

import pytest
from sqlmodel import select

from bot.main import build
from bot.settings import Settings
from core.context import Actor
from core.errors import InvalidInput, PermissionDenied
from store.crypto import generate_key
from store.db import Scope
from store.tables import DocPlatform, Ticket
from tests.factories import psa_backed
from tests.fakes.docs_platforms import FakeHudu, FakeItGlue, seed_hudu, seed_itglue


@pytest.fixture
async def env(db_url, db, tmp_path, workspace_id):
    hudu, itglue = await FakeHudu().start(), await FakeItGlue().start()
    seed_hudu(hudu)
    seed_itglue(itglue)
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k", run_scheduler=False, run_outbox_worker=False))
    c.default_workspace_id = workspace_id
    setup = await psa_backed(db, workspace_id)
    async with db.write(Scope.workspace(workspace_id)) as s:
        t = Ticket(workspace_id=workspace_id, number=8001, external_id="8001", customer_id=setup.customer_id,
                   connection_id=setup.connection_id, subject="Laptop slow", priority="low", priority_rank=3,
                   stage="new", device_ref="ACME-LT-1")
        s.add(t)
        await s.flush()
        ticket_id = t.id
    yield c, hudu, itglue, ticket_id
    await c.aclose()
    await hudu.stop()
    await itglue.stop()


async def test_configure_tests_first_and_encrypts(env, db, workspace_id, caplog):
    c, hudu, itglue, _ = env
    admin = Actor.system(workspace_id)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(InvalidInput, match="Hudu did not accept these settings") as e:
        await c.docs.configure(admin, "hudu", hudu.url, "wrong-key")
    assert "Nothing was saved" in (e.value.hint or "")
    with pytest.raises(InvalidInput, match="not an https URL"):
        await c.docs.configure(admin, "hudu", "http://hudu.example.com", hudu.api_key)
    with pytest.raises(PermissionDenied) as denied:
        await c.docs.configure(Actor(workspace_id=workspace_id, origin=admin.origin), "hudu", hudu.url, hudu.api_key)
    assert "deskbridge customer docs-platform" in (denied.value.hint or "")  # every refusal says what to do next
    with pytest.raises(InvalidInput, match="An API key is needed") as empty:
        await c.docs.configure(admin, "hudu", hudu.url, "  ")
    assert "nothing was saved" in (empty.value.hint or "")
    async with db.read(Scope.workspace(workspace_id)) as s:
        assert (await s.exec(select(DocPlatform))).all() == []
    await c.docs.configure(admin, "hudu", hudu.url, hudu.api_key)
    await c.docs.configure(admin, "itglue", itglue.url, itglue.api_key)
    async with db.read(Scope.workspace(workspace_id)) as s:
        rows = (await s.exec(select(DocPlatform).order_by(DocPlatform.kind))).all()
    assert [(r.kind, r.base_url) for r in rows] == [("hudu", hudu.url), ("itglue", itglue.url)]
    assert all(hudu.api_key.encode() not in r.credentials_ciphertext for r in rows)
    assert hudu.api_key not in caplog.text and "wrong-key" not in caplog.text
    assert await c.docs.platforms(admin) == [("hudu", hudu.url), ("itglue", itglue.url)]


async def test_links_from_both_platforms_cached_and_tolerant(env, workspace_id, tech):
    c, hudu, itglue, ticket_id = env
    admin = Actor.system(workspace_id)
    await c.docs.configure(admin, "hudu", hudu.url, hudu.api_key)
    await c.docs.configure(admin, "itglue", itglue.url, itglue.api_key)
    links = await c.docs.links(tech, ticket_id)
    titles = [x.title for x in links]
    assert titles[:2] == ["Hudu: Acme Corp", "Hudu asset: ACME-LT-1"] and "IT Glue: Acme Corp" in titles
    assert "IT Glue configuration: ACME-LT-1" in titles
    assert ("/api/v1/companies", {"id_in_integration": "250", "page": "1"}) in hudu.requests  # the PSA id first
    n = len(hudu.requests) + len(itglue.requests)
    assert await c.docs.links(tech, ticket_id) == links  # cached
    assert len(hudu.requests) + len(itglue.requests) == n
    c.docs._cache.clear()
    itglue.throttle(10, "0")  # IT Glue keeps refusing: its links are left out, Hudu's still shown
    partial = await c.docs.links(tech, ticket_id)
    assert [x.title for x in partial] == [t for t in titles if t.startswith("Hudu")]
    with pytest.raises(PermissionDenied) as denied:
        await c.docs.links(tech.scoped_to_customer(1), ticket_id)
    assert "technicians' channel" in (denied.value.hint or "")
