"""The AI's category where the PSA nests them (Autotask issue type › sub-issue type), end to end against the
fake Autotask (real HTTP through an injected transport): trained on the workspace's own pairs, applied in two
steps (the category, then a subcategory of that category only), delivered through the outbox as one pair,
undone back to empty."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bot.main import build
from bot.settings import Settings
from core.context import Actor
from store.crypto import generate_key
from store.db import Scope
from store.enums import Priority, Stage
from store.tables import AiCategoryApply, OutboxOp, Ticket
from tests.fakes.autotask import FakeAutotask, FakeClock

ACME = 175
HARDWARE, PRINTER, LAPTOP, SOFTWARE, EMAIL, OFFICE = 11, 101, 102, 12, 201, 202
WORDS = {
    ("Hardware", "Printer"): ["printer jam", "toner empty", "printer offline", "paper stuck in tray"],
    ("Hardware", "Laptop"): ["laptop screen cracked", "laptop battery dead", "laptop hinge broken", "laptop fan loud"],
    ("Software", "E-mail"): ["outlook crashes", "mailbox full", "email not syncing", "shared mailbox missing"],
    ("Software", "Office"): ["excel macro error", "word document corrupt", "powerpoint freezes", "office licence"],
}


@pytest.fixture
def fake() -> FakeAutotask:
    return FakeAutotask(clock=FakeClock(datetime.now(UTC)))


@pytest.fixture
async def container(db_url, tmp_path, workspace_id, fake):  # type: ignore[no-untyped-def]
    c = build(Settings(database_url=db_url, secret_key=generate_key(), sandbox="off", auto_migrate=False,
                       secret_key_file=tmp_path / "k"), transport=fake.transport())
    c.default_workspace_id = workspace_id
    yield c
    await c.aclose()


async def _setup(container, fake, ws: int) -> int:  # type: ignore[no-untyped-def]
    conn, _ = await container.connections.add(ws, kind="autotask", name="autotask",
                                              settings=fake.settings(default_board_id="29682833"),
                                              credentials=fake.credentials())
    rnd = random.Random(4)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    async with container.db.write(Scope.workspace(ws)) as s:  # closed history with the PSA's pairs
        for i in range(340):
            (cat, sub), phrases = list(WORDS.items())[i % 4]
            s.add(Ticket(workspace_id=ws, connection_id=conn.id, external_id=f"h{i}", number=80_000 + i,
                         subject=f"{rnd.choice(phrases)} {rnd.choice(phrases)} user {i}", priority=Priority.LOW.value,
                         stage=Stage.CLOSED.value, closed_at=t0 + timedelta(minutes=i), type_name="Service Request",
                         category_name=cat, subcategory_name=sub))
    return int(conn.id)


async def _local(container, ws: int, external_id: int) -> Ticket:  # type: ignore[no-untyped-def]
    async with container.db.read(Scope.workspace(ws)) as s:
        return (await s.exec(select(Ticket).where(Ticket.external_id == str(external_id)))).one()


async def test_two_steps_one_pair_through_the_outbox_and_undo(container, fake, workspace_id, tech):  # type: ignore[no-untyped-def]
    cid = await _setup(container, fake, workspace_id)
    raw = fake.add_ticket("printer jam and the toner is empty", companyID=ACME)
    assert (await container.sync.run(cid)).ok
    ai = container.ai
    status = await ai.train(workspace_id)
    assert "Hardware › Printer" in status.metrics["labels"]  # the label space is the PSA's own pairs
    local = await _local(container, workspace_id, raw["id"])
    assert local.category_name is None and local.type_name  # Autotask's ticket type is not the category
    d = await ai.categorise(tech, local.id)  # type: ignore[arg-type]
    assert d is not None and d.label == "Hardware › Printer" and d.action == "suggest"
    admin = Actor.system(workspace_id)
    await ai.set_setting(admin, "auto_apply", "on")
    await ai.set_setting(admin, "fill_threshold", "0.99")
    assert await ai.auto_categorise(workspace_id) == 0  # below the threshold: nothing
    await ai.set_setting(admin, "fill_threshold", "0.5")
    assert await ai.auto_categorise(workspace_id) == 1
    assert await ai.auto_categorise(workspace_id) == 0
    async with container.db.read(Scope.workspace(workspace_id)) as s:
        (op,) = (await s.exec(select(OutboxOp))).all()
        (row,) = (await s.exec(select(AiCategoryApply))).all()
    assert (op.payload["category_external_id"], op.payload["subcategory_external_id"]) == (str(HARDWARE), str(PRINTER))
    assert op.payload["type_external_id"] is None and row.label == "Hardware › Printer"
    for _ in range(3):
        await container.outbox_worker.drain()
    stored = fake.tables["Tickets"][raw["id"]]
    assert (stored["issueType"], stored["subIssueType"]) == (HARDWARE, PRINTER)
    assert (await container.sync.run(cid)).ok
    local = await _local(container, workspace_id, raw["id"])
    assert (local.category_name, local.subcategory_name) == ("Hardware", "Printer")
    view = await ai.suggestions(tech, local.id)  # type: ignore[arg-type]
    assert view is not None and view.category is not None and view.category.action == "applied"

    assert await ai.category_writes.undo(tech, f"id:{local.id}") == ""
    for _ in range(3):
        await container.outbox_worker.drain()
    stored = fake.tables["Tickets"][raw["id"]]
    assert not stored.get("issueType") and not stored.get("subIssueType")
    assert await ai.auto_categorise(workspace_id) == 0  # a technician decided
