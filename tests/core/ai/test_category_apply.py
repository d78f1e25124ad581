"""The AI applying a category through the outbox, end to end against the fake ConnectWise (real HTTP through
an injected transport): gated by the admin's thresholds, one write whatever the passes, audited, a dead
letter when the PSA refuses, never over a technician's choice, undoable, never on a customer's view."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from connectors.base import Capabilities
from connectors.registry import Registry
from core.ai.service import AiService
from core.context import Actor
from core.errors import Conflict, PermissionDenied
from core.notify import RecordingNotifier
from core.ticket_lookup import build_detail
from store.db import Database, Scope
from store.enums import EntryKind, OutboxStatus, Priority, Stage
from store.tables import AiCategoryApply, AuditLog, OutboxOp, Ticket, TimelineEntry
from tests.core.ai.test_categorize import corpus
from tests.core.outbox.conftest import make_worker
from tests.core.sync.conftest import SyncEnv, make_env
from tests.fakes.connectwise import FakeConnectWise
from tests.fakes.outbox_psa import FakeClock

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass
class Rig:
    env: SyncEnv
    ai: AiService
    worker: object
    clock: FakeClock

    @property
    def fake(self) -> FakeConnectWise:
        return self.env.fake

    async def sync(self) -> None:
        await self.env.sync.refresh_picklists(self.env.connection_id)
        await self.env.sync.run(self.env.connection_id)

    async def local(self, external_id: int) -> Ticket:
        return (await self.env.tickets())[str(external_id)]

    async def ops(self) -> list[OutboxOp]:
        async with self.env.db.read(Scope.workspace(self.env.workspace_id)) as s:
            return list((await s.exec(select(OutboxOp).order_by(OutboxOp.id))).all())

    async def deliver(self) -> None:
        for _ in range(30):
            await self.worker.drain()  # type: ignore[attr-defined]
            if all(o.status not in (OutboxStatus.PENDING.value, OutboxStatus.INFLIGHT.value) for o in await self.ops()):
                return
            self.clock.advance(30)
        raise AssertionError("outbox did not settle")


async def _history(db: Database, ws: int) -> None:
    """Closed, labelled tickets the model learns from (past the cold start)."""
    texts, labels = corpus(110)
    async with db.write(Scope.workspace(ws)) as s:
        for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
            s.add(Ticket(workspace_id=ws, number=50_000 + i, subject=text, priority=Priority.MEDIUM.value,
                         stage=Stage.CLOSED.value, type_name=label, closed_at=T0 + timedelta(minutes=i)))


@pytest.fixture
async def rig(db: Database, workspace_id: int) -> Rig:
    fake = FakeConnectWise()
    fake.record_bodies = True
    board = next(b for b in fake.boards.values() if b["name"] == "Service Desk")
    for name in ("Access", "Hardware", "Purchase"):
        tid = fake.next_id("type")
        fake.types[tid] = {"id": tid, "name": name, "board": {"id": board["id"], "name": board["name"]},
                           "inactiveFlag": False}
    env = await make_env(db, workspace_id, fake)
    caps = Registry(transport=fake.transport()).capabilities
    ai = AiService(db, capabilities=caps)
    clock = FakeClock()
    worker = make_worker(db, env.connections, RecordingNotifier(), clock)
    await _history(db, workspace_id)
    await ai.train(workspace_id)
    return Rig(env, ai, worker, clock)


def _cw_ticket(fake: FakeConnectWise, summary: str, **fields: object) -> int:
    board = next(b for b in fake.boards.values() if b["name"] == "Service Desk")
    return int(fake.add_ticket(summary, board={"id": board["id"]}, **fields)["id"])


async def _settings(ai: AiService, ws: int, **values: str) -> None:
    for name, value in values.items():
        await ai.set_setting(Actor.system(ws), name, value)


async def test_nothing_is_applied_below_the_threshold_or_with_auto_apply_off(rig, workspace_id):
    cw = _cw_ticket(rig.fake, "password reset account locked cannot login")
    await rig.sync()
    assert await rig.ai.auto_categorise(workspace_id) == 0  # auto-apply is off by default
    await _settings(rig.ai, workspace_id, auto_apply="on", fill_threshold="1.0")
    assert await rig.ai.auto_categorise(workspace_id) == 0
    assert await rig.ops() == []
    assert (await rig.local(cw)).type_name is None
    assert "type" not in rig.fake.tickets[cw]


async def test_applied_once_through_the_outbox_audited_and_kept_by_the_next_sync(rig, workspace_id, tech):
    cw = _cw_ticket(rig.fake, "password reset account locked cannot login")
    await rig.sync()
    await _settings(rig.ai, workspace_id, auto_apply="on", fill_threshold="0.5")
    assert await rig.ai.auto_categorise(workspace_id) == 1
    assert await rig.ai.auto_categorise(workspace_id) == 0  # a second pass writes nothing more
    ops = await rig.ops()
    assert len(ops) == 1 and ops[0].kind == "update_ticket" and ops[0].actor.startswith("ai:category v1")
    access = next(t["id"] for t in rig.fake.types.values() if t["name"] == "Access")
    assert ops[0].payload["type_external_id"] == str(access)
    local = await rig.local(cw)
    assert local.type_name == "Access"
    await rig.sync()  # the PSA has not got it yet: the local value is protected until delivered
    assert (await rig.local(cw)).type_name == "Access"
    await rig.deliver()
    assert rig.fake.tickets[cw]["type"]["name"] == "Access"
    patches = [r for r in rig.fake.requests if r.method == "PATCH" and r.path.endswith(f"/service/tickets/{cw}")]
    assert len(patches) == 1 and json.loads(patches[0].body) == [
        {"op": "replace", "path": "type", "value": {"id": access}}]
    async with rig.env.db.read(Scope.workspace(workspace_id)) as s:
        audit = (await s.exec(select(AuditLog).where(AuditLog.op_id == ops[0].id))).all()
        entries = (await s.exec(select(TimelineEntry).where(TimelineEntry.ticket_id == local.id,
                                                            TimelineEntry.kind == EntryKind.CATEGORY_CHANGE))).all()
    assert len(audit) == 1 and audit[0].error is None and audit[0].actor.startswith("ai:category v1")
    assert audit[0].request["kind"] == "update_ticket"
    assert len(entries) == 1 and entries[0].author_name == "Deskbridge AI" and entries[0].data["by_ai"] is True
    assert 0.5 <= entries[0].data["confidence"] <= 1.0
    await rig.sync()
    assert (await rig.local(cw)).type_name == "Access"
    view = await rig.ai.suggestions(tech, local.id)  # the card: applied by AI, its confidence, an Undo
    assert view is not None and view.category is not None and view.category.action == "applied"
    assert view.category.label == "Access" and view.category.confidence >= 0.5
    assert [a.action for a in view.actions] == ["ai_undo_category"]


async def test_a_technicians_category_is_never_changed(rig, workspace_id):
    hardware = next(t["id"] for t in rig.fake.types.values() if t["name"] == "Hardware")
    cw = _cw_ticket(rig.fake, "password reset account locked cannot login", type={"id": hardware})
    await rig.sync()
    assert (await rig.local(cw)).type_name == "Hardware"
    await _settings(rig.ai, workspace_id, auto_apply="on", fill_threshold="0.3", change_threshold="0.3")
    assert await rig.ai.auto_categorise(workspace_id) == 0
    assert await rig.ops() == []


async def test_undo_puts_back_what_was_there_and_the_ai_leaves_the_ticket_alone(rig, workspace_id, tech):
    cw = _cw_ticket(rig.fake, "password reset account locked cannot login")
    await rig.sync()
    await _settings(rig.ai, workspace_id, auto_apply="on", fill_threshold="0.5")
    await rig.ai.auto_categorise(workspace_id)
    await rig.deliver()
    local = await rig.local(cw)
    customer = tech.scoped_to_customer(local.customer_id)
    with pytest.raises(PermissionDenied):
        await rig.ai.category_writes.undo(customer, f"id:{local.id}")
    assert await rig.ai.category_writes.undo(tech, f"id:{local.id}") == ""
    with pytest.raises(Conflict, match="nothing to undo"):
        await rig.ai.category_writes.undo(tech, f"id:{local.id}")
    await rig.deliver()
    assert "type" not in rig.fake.tickets[cw]
    assert (await rig.local(cw)).type_name is None
    assert await rig.ai.auto_categorise(workspace_id) == 0  # never again on this ticket
    d = await rig.ai.categorise(tech, local.id)
    assert d is not None and d.action == "suggest" and "undid" in d.reason
    ops = await rig.ops()
    assert [o.payload.get("clear_type") for o in ops] == [False, True]
    assert all(o.status == OutboxStatus.DONE.value for o in ops)


async def test_a_type_the_psa_refuses_becomes_a_dead_letter(rig, workspace_id):
    cw = _cw_ticket(rig.fake, "password reset account locked cannot login")
    await rig.sync()
    await _settings(rig.ai, workspace_id, auto_apply="on", fill_threshold="0.5")
    assert await rig.ai.auto_categorise(workspace_id) == 1
    access = next(k for k, t in rig.fake.types.items() if t["name"] == "Access")
    del rig.fake.types[access]  # removed in ConnectWise after our picklist read
    await rig.deliver()
    [op] = await rig.ops()
    assert op.status == OutboxStatus.DEAD.value and "type" not in rig.fake.tickets[cw]


async def test_nothing_is_applied_where_the_psa_cannot_change_a_type(rig, workspace_id, db):
    cw = _cw_ticket(rig.fake, "password reset account locked cannot login")
    await rig.sync()
    ai = AiService(db, capabilities=lambda kind: Capabilities(features=frozenset()))
    await _settings(ai, workspace_id, auto_apply="on", fill_threshold="0.5")
    assert await ai.auto_categorise(workspace_id) == 0
    assert await rig.ops() == [] and (await rig.local(cw)).type_name is None


async def test_the_ai_category_never_reaches_a_customer(rig, workspace_id, tech):
    cw = _cw_ticket(rig.fake, "password reset account locked cannot login")
    await rig.sync()
    await _settings(rig.ai, workspace_id, auto_apply="on", fill_threshold="0.5")
    await rig.ai.auto_categorise(workspace_id)
    local = await rig.local(cw)
    customer = tech.scoped_to_customer(local.customer_id)
    assert await rig.ai.suggestions(customer, local.id) is None
    async with rig.env.db.read(Scope.workspace(workspace_id)) as s:
        ticket = await s.get(Ticket, local.id)
        inside = await build_detail(s, ticket, internal=True)  # type: ignore[arg-type]
        outside = await build_detail(s, ticket, internal=False)  # type: ignore[arg-type]
    assert any(i.kind == EntryKind.CATEGORY_CHANGE for i in inside.timeline)
    assert not any(i.kind == EntryKind.CATEGORY_CHANGE for i in outside.timeline)


async def test_a_technician_accepts_a_suggestion_in_one_click_and_the_ai_keeps_off_it(rig, workspace_id, tech):
    cw = _cw_ticket(rig.fake, "password reset account locked cannot login")
    await rig.sync()
    local = await rig.local(cw)
    view = await rig.ai.suggestions(tech, local.id)
    assert view is not None and view.category is not None and view.category.action == "suggest"
    [accept] = view.actions
    data = json.loads(accept.value)
    assert accept.action == "ai_accept_category" and data["l"] == "Access"
    assert await rig.ai.category_writes.accept(tech, data["t"], data["l"]) is True
    await rig.deliver()
    assert rig.fake.tickets[cw]["type"]["name"] == "Access"
    async with rig.env.db.read(Scope.workspace(workspace_id)) as s:
        assert (await s.exec(select(AiCategoryApply))).all() == []  # a person's choice, not the AI's


async def test_a_cards_suggestions_read_the_ticket_and_settings_once_and_answer_as_each_part_alone(rig, tech,
                                                                                                   monkeypatch):
    """A card's AI part (built for every card refresh) reads the ticket and the AI settings once for all its
    parts: fewer reads than asking each part alone, the same answers."""
    cw = _cw_ticket(rig.fake, "password reset account locked cannot login")
    await rig.sync()
    local = await rig.local(cw)
    db = rig.env.db
    reads = [0]
    read = db.read

    def counted(*a: object, **kw: object) -> object:
        reads[0] += 1
        return read(*a, **kw)

    monkeypatch.setattr(db, "read", counted)
    await rig.ai.suggestions(tech, local.id)  # warm: the similar-ticket and KB indexes are built on first use
    reads[0] = 0
    view = await rig.ai.suggestions(tech, local.id)
    together = reads[0]
    reads[0] = 0
    decision = await rig.ai.categorise(tech, local.id)
    similar = await rig.ai.similar(tech, ticket_id=local.id)
    kb = await rig.ai.kb.links(tech, local.id)
    drafts = (await rig.ai.settings(tech.workspace_id))["drafts"]
    await rig.ai.risk.at_risk(tech, ticket_ids=[local.id], limit=1)  # the card's risk part, alone
    apart = reads[0]
    assert view is not None and view.category is not None and decision is not None
    assert view.category.label == decision.label and view.category.action == decision.action
    assert [s.ticket_id for s in view.similar] == [h.doc.ticket_id for h in similar.hits]
    assert len(view.kb) == len(kb) and any(a.action == "ai_draft" for a in view.actions) == drafts
    # apart: categorise reads the ticket and settings, and the card's category part read its labels and applied
    # row a second time; similar, the KB and the risk chip read the ticket and/or settings again
    assert together <= apart - 5, (together, apart)
