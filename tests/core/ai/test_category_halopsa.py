"""HaloPSA's own categories as the AI's label space, end to end against the fake HaloPSA (real HTTP through an
injected transport): `GET /Category?type_id=1` (a bare array; nesting written "Hardware>Laptop" in `value`)
cached as category › subcategory, the model trained on those pairs, applied in two steps through the outbox
as one `category_1` write, read back by the next sync, never over a technician's category, undone to empty.
The evidence for Halo's shape is in connectors/halopsa/categories.py."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from bot.main import build
from bot.settings import Settings
from connectors.errors import PsaValidationError
from connectors.halopsa.connector import HaloPsaConnector
from core.context import Actor
from core.errors import InvalidInput
from store.crypto import generate_key
from store.db import Scope
from store.enums import Priority, Stage
from store.tables import AiCategoryApply, OutboxOp, PicklistItem, Ticket
from tests.fakes.halopsa import FakeHalo

ACME = 12
WORDS = {
    ("Hardware", "Printer"): ["printer jam", "toner empty", "printer offline", "paper stuck in tray"],
    ("Hardware", "Laptop"): ["laptop screen cracked", "laptop battery dead", "laptop hinge broken", "laptop fan loud"],
    ("Software", "E-mail"): ["outlook crashes", "mailbox full", "email not syncing", "shared mailbox missing"],
    ("Software", "Office"): ["excel macro error", "word document corrupt", "powerpoint freezes", "office licence"],
}


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


async def _setup(container, fake, ws: int) -> int:  # type: ignore[no-untyped-def]
    conn, _ = await container.connections.add(ws, kind="halopsa", name="halo", settings=fake.settings(),
                                              credentials=fake.credentials())
    rnd = random.Random(4)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    async with container.db.write(Scope.workspace(ws)) as s:  # closed history carrying Halo's category_1 pairs
        for i in range(340):
            (cat, sub), phrases = list(WORDS.items())[i % 4]
            s.add(Ticket(workspace_id=ws, connection_id=conn.id, external_id=f"h{i}", number=80_000 + i,
                         subject=f"{rnd.choice(phrases)} {rnd.choice(phrases)} user {i}", priority=Priority.LOW.value,
                         stage=Stage.CLOSED.value, closed_at=t0 + timedelta(minutes=i), type_name="Incident",
                         category_name=cat, category_external_id=cat, subcategory_name=sub,
                         subcategory_external_id=f"{cat}>{sub}"))
    return int(conn.id)


async def _local(container, ws: int, external_id: int) -> Ticket:  # type: ignore[no-untyped-def]
    async with container.db.read(Scope.workspace(ws)) as s:
        return (await s.exec(select(Ticket).where(Ticket.external_id == str(external_id)))).one()


def _ticket_posts(fake: FakeHalo) -> list[list[dict[str, object]]]:
    return [json.loads(r.body) for r in fake.requests if r.key == "POST /api/Tickets"]


async def _auto(container, ws: int) -> int:  # type: ignore[no-untyped-def]
    admin = Actor.system(ws)
    await container.ai.set_setting(admin, "auto_apply", "on")
    await container.ai.set_setting(admin, "fill_threshold", "0.5")
    return int(await container.ai.auto_categorise(ws))


async def test_the_category_list_is_cached_as_categories_and_subcategories(container, fake, workspace_id):  # type: ignore[no-untyped-def]
    cid = await _setup(container, fake, workspace_id)
    assert (await container.sync.run(cid)).ok
    (get,) = [r for r in fake.requests if r.key == "GET /api/Category"]
    assert get.params == {"type_id": "1"}  # category_1 only: "Resolved by phone" (category_2) is another field
    async with container.db.read(Scope.workspace(workspace_id)) as s:
        rows = (await s.exec(select(PicklistItem).where(PicklistItem.connection_id == cid,
                                                        col(PicklistItem.kind).in_(("category", "subcategory")))
                             )).all()
    got = {(r.kind, r.external_id, r.name, r.parent_external_id) for r in rows if r.active}
    assert got == {("category", "Hardware", "Hardware", ""), ("category", "Software", "Software", ""),
                   ("subcategory", "Hardware>Laptop", "Laptop", "Hardware"),
                   ("subcategory", "Hardware>Printer", "Printer", "Hardware"),
                   ("subcategory", "Software>E-mail", "E-mail", "Software"),
                   ("subcategory", "Software>Office", "Office", "Software")}
    fake.categories = {k: v for k, v in fake.categories.items() if v["value"] != "Software>Office"}
    assert (await container.sync.refresh_picklists(cid)).ok
    async with container.db.read(Scope.workspace(workspace_id)) as s:
        office = (await s.exec(select(PicklistItem).where(PicklistItem.connection_id == cid,
                                                          PicklistItem.external_id == "Software>Office"))).one()
    assert office.active is False  # Halo no longer lists it: never offered, never written


async def test_a_pair_is_applied_once_as_category_1_through_the_outbox_and_undone(container, fake, workspace_id,
                                                                                    tech):  # type: ignore[no-untyped-def]
    cid = await _setup(container, fake, workspace_id)
    raw = fake.add_ticket("printer jam and the toner is empty", client_id=ACME)
    assert (await container.sync.run(cid)).ok
    status = await container.ai.train(workspace_id)
    assert "Hardware › Printer" in status.metrics["labels"]  # the label space is Halo's own pairs
    local = await _local(container, workspace_id, raw["id"])
    d = await container.ai.categorise(tech, local.id)  # type: ignore[arg-type]
    assert d is not None and d.label == "Hardware › Printer"
    before = len(_ticket_posts(fake))
    assert await _auto(container, workspace_id) == 1
    assert await container.ai.auto_categorise(workspace_id) == 0
    async with container.db.read(Scope.workspace(workspace_id)) as s:
        (op,) = (await s.exec(select(OutboxOp))).all()
        (row,) = (await s.exec(select(AiCategoryApply))).all()
    assert (op.payload["category_external_id"], op.payload["subcategory_external_id"]) == ("Hardware",
                                                                                          "Hardware>Printer")
    assert row.label == "Hardware › Printer"
    for _ in range(3):
        await container.outbox_worker.drain()
    posts = _ticket_posts(fake)[before:]
    assert posts == [[{"id": raw["id"], "category_1": "Hardware>Printer", "_dont_fire_automations": True}]]
    stored = fake.tickets[raw["id"]]
    assert (stored["category_1"], stored["categoryid_1"]) == (
        "Hardware>Printer", next(c["id"] for c in fake.categories.values() if c["value"] == "Hardware>Printer"))
    assert (await container.sync.run(cid)).ok
    local = await _local(container, workspace_id, raw["id"])
    assert (local.category_name, local.subcategory_name) == ("Hardware", "Printer")
    assert await container.ai.auto_categorise(workspace_id) == 0 and len(_ticket_posts(fake)) == before + 1

    assert await container.ai.category_writes.undo(tech, f"id:{local.id}") == ""
    for _ in range(3):
        await container.outbox_worker.drain()
    assert fake.tickets[raw["id"]]["category_1"] == ""
    assert await container.ai.auto_categorise(workspace_id) == 0  # a technician decided


async def test_a_technicians_category_in_halo_is_never_changed(container, fake, workspace_id):  # type: ignore[no-untyped-def]
    cid = await _setup(container, fake, workspace_id)
    raw = fake.add_ticket("printer jam and the toner is empty", client_id=ACME, category_1="Software>Office")
    assert (await container.sync.run(cid)).ok
    await container.ai.train(workspace_id)
    before = len(_ticket_posts(fake))
    assert await _auto(container, workspace_id) == 0
    await container.outbox_worker.drain()
    assert fake.tickets[raw["id"]]["category_1"] == "Software>Office" and len(_ticket_posts(fake)) == before


async def test_a_category_halo_does_not_list_is_refused_before_anything_is_sent(fake):  # type: ignore[no-untyped-def]
    from connectors.base import TicketPatch

    conn = HaloPsaConnector(fake.config(), transport=fake.transport())
    raw = fake.add_ticket("x", client_id=ACME)
    before = len(_ticket_posts(fake))
    for cat, sub, word in (("Hardware", "Hardware>Scanner", "Hardware>Scanner"), ("Network", "", "Network"),
                           ("Software", "Hardware>Laptop", "not under")):
        with pytest.raises(PsaValidationError, match=word):
            await conn.update_ticket(str(raw["id"]), TicketPatch(category_external_id=cat,
                                                                 subcategory_external_id=sub))
    assert len(_ticket_posts(fake)) == before and fake.tickets[raw["id"]]["category_1"] is None
    fake.add_category("Hardware>Scanner")  # just added in Halo: the cached list is re-read once, then written
    saved = await conn.update_ticket(str(raw["id"]), TicketPatch(category_external_id="Hardware",
                                                                 subcategory_external_id="Hardware>Scanner"))
    assert saved.category is not None and saved.subcategory is not None
    assert (saved.category.id, saved.subcategory.id, saved.subcategory.name) == ("Hardware", "Hardware>Scanner",
                                                                                 "Scanner")
    assert fake.tickets[raw["id"]]["category_1"] == "Hardware>Scanner"
    await conn.aclose()


async def test_a_failing_category_list_keeps_the_other_picklists(fake):  # type: ignore[no-untyped-def]
    conn = HaloPsaConnector(fake.config(), transport=fake.transport())
    fake.fail_next(403, match="GET /api/Category")
    picks = await conn.picklists()
    assert "category" in picks.problems and "category" not in picks.complete
    assert picks.categories == [] and picks.boards  # types, statuses, priorities still read
    picks = await conn.picklists()
    assert "category" in picks.complete and {c.external_id for c in picks.categories} >= {"Hardware",
                                                                                          "Hardware>Laptop"}
    await conn.aclose()


async def test_a_suggested_pair_halo_does_not_list_is_refused_when_accepted(container, fake, workspace_id,
                                                                             tech):  # type: ignore[no-untyped-def]
    cid = await _setup(container, fake, workspace_id)
    raw = fake.add_ticket("printer jam and the toner is empty", client_id=ACME)
    assert (await container.sync.run(cid)).ok
    local = await _local(container, workspace_id, raw["id"])
    with pytest.raises(InvalidInput, match="Printer|Scanner"):
        await container.ai.category_writes.accept(tech, f"id:{local.id}", "Hardware › Scanner")
    async with container.db.read(Scope.workspace(workspace_id)) as s:
        assert (await s.exec(select(OutboxOp))).all() == []
