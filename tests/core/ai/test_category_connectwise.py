"""The AI's category on ConnectWise, where the board nests a subtype (and an item) under the ticket's type:
trained on the workspace's own type › subtype pairs, gated in two steps, checked against the board's
type/subtype/item associations (synced from the PSA), delivered through the outbox as one PATCH, audited,
written once, never over a technician's choice, and never leaving a technician's item invalid. End to end
against the fake ConnectWise over real HTTP (injected transport)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from connectors.registry import Registry
from core.ai.service import AiService
from core.errors import Conflict, InvalidInput
from core.notify import RecordingNotifier
from store.db import Database, Scope
from store.enums import OutboxStatus, Priority, Stage
from store.tables import AuditLog, PicklistItem, Ticket
from tests.core.ai.test_category_apply import Rig as ApplyRig
from tests.core.outbox.conftest import make_worker
from tests.core.sync.conftest import make_env
from tests.fakes.connectwise import FakeConnectWise
from tests.fakes.outbox_psa import FakeClock

T0 = datetime(2026, 3, 1, tzinfo=UTC)
WORDS = {  # (type, subtype) -> what users write; the fake's seeded Service Desk catalogue allows all three
    ("Incident", "Email"): ["outlook crashes", "mailbox full", "email not syncing", "shared mailbox missing"],
    ("Incident", "Network"): ["vpn drops", "wifi slow", "network down", "cannot reach file server"],
    ("Request", "Access"): ["new account", "grant access to share", "add to group", "permission for folder"],
}


class Rig(ApplyRig):
    """test_category_apply's rig, with tickets on the fake's Service Desk board."""

    def ticket(self, summary: str, **fields: object) -> int:
        desk = next(b for b in self.fake.boards.values() if b["name"] == "Service Desk")
        return int(self.fake.add_ticket(summary, board={"id": desk["id"]}, **fields)["id"])

    def patches(self, external_id: int) -> list[list[dict[str, object]]]:
        return [json.loads(r.body) for r in self.fake.requests
                if r.method == "PATCH" and r.path.endswith(f"/service/tickets/{external_id}")]

    async def settings(self, **values: str) -> None:
        from core.context import Actor

        for name, value in values.items():
            await self.ai.set_setting(Actor.system(self.env.workspace_id), name, value)


@pytest.fixture
async def rig(db: Database, workspace_id: int) -> Rig:
    fake = FakeConnectWise()
    fake.record_bodies = True
    env = await make_env(db, workspace_id, fake)
    rnd = random.Random(7)
    async with db.write(Scope.workspace(workspace_id)) as s:  # closed history of this PSA connection
        for i in range(330):
            (ty, sub), phrases = list(WORDS.items())[i % 3]
            s.add(Ticket(workspace_id=workspace_id, connection_id=env.connection_id, external_id=f"h{i}",
                         number=60_000 + i, subject=f"{rnd.choice(phrases)} {rnd.choice(phrases)} user {i}",
                         priority=Priority.MEDIUM.value, stage=Stage.CLOSED.value, type_name=ty,
                         category_name=sub, closed_at=T0 + timedelta(minutes=i)))
    ai = AiService(db, capabilities=Registry(transport=fake.transport()).capabilities)
    clock = FakeClock()
    rig = Rig(env, ai, make_worker(db, env.connections, RecordingNotifier(), clock), clock)
    await rig.sync()
    status = await ai.train(workspace_id)
    assert set(status.metrics["labels"]) == {"Incident › Email", "Incident › Network", "Request › Access"}
    return rig


async def test_the_board_catalogue_is_cached_as_subtypes_under_types_and_items_under_pairs(rig, workspace_id):
    fake = rig.fake
    incident = next(t["id"] for t in fake.types.values() if t["name"] == "Incident")
    email = next(r["id"] for r in fake.subtypes.values() if r["name"] == "Email")
    async with rig.env.db.read(Scope.workspace(workspace_id)) as s:
        rows = (await s.exec(select(PicklistItem).where(PicklistItem.kind.in_(("subtype", "item"))))).all()  # type: ignore[attr-defined]
    got = {(r.kind, r.parent_external_id, r.name, r.active) for r in rows}
    assert ("subtype", str(incident), "Email", True) in got and ("item", f"{incident}:{email}", "Outlook", True) in got
    assert not any(r.kind == "subtype" and r.name == "Access" and r.parent_external_id == str(incident) for r in rows)
    fake.subtypes[email]["inactiveFlag"] = True  # switched off in ConnectWise: inactive here after the next read
    await rig.env.sync.refresh_picklists(rig.env.connection_id)
    async with rig.env.db.read(Scope.workspace(workspace_id)) as s:
        row = (await s.exec(select(PicklistItem).where(PicklistItem.kind == "subtype",
                                                       PicklistItem.external_id == str(email)))).one()
    assert row.active is False


async def test_type_and_subtype_are_applied_in_one_patch_once_and_audited(rig, workspace_id, tech):
    cw = rig.ticket("outlook crashes and the mailbox is full")
    await rig.sync()
    local = await rig.local(cw)
    d = await rig.ai.categorise(tech, local.id)
    assert d is not None and d.label == "Incident › Email"
    await rig.settings(auto_apply="on", fill_threshold="0.5")
    assert await rig.ai.auto_categorise(workspace_id) == 1
    assert await rig.ai.auto_categorise(workspace_id) == 0  # a second pass writes nothing more
    local = await rig.local(cw)
    assert (local.type_name, local.category_name) == ("Incident", "Email")
    await rig.deliver()
    incident = next(t["id"] for t in rig.fake.types.values() if t["name"] == "Incident")
    email = next(r["id"] for r in rig.fake.subtypes.values() if r["name"] == "Email")
    assert rig.patches(cw) == [[{"op": "replace", "path": "type", "value": {"id": incident}},
                                {"op": "replace", "path": "subType", "value": {"id": email}}]]
    assert rig.fake.tickets[cw]["subType"]["name"] == "Email" and "item" not in rig.fake.tickets[cw]
    [op] = await rig.ops()
    async with rig.env.db.read(Scope.workspace(workspace_id)) as s:
        [audit] = (await s.exec(select(AuditLog).where(AuditLog.op_id == op.id))).all()
    assert op.status == OutboxStatus.DONE.value and audit.actor.startswith("ai:category v1") and audit.error is None
    await rig.sync()  # read back from the PSA: the same pair, and no further write
    assert ((await rig.local(cw)).type_name, (await rig.local(cw)).category_name) == ("Incident", "Email")
    assert await rig.ai.auto_categorise(workspace_id) == 0 and len(await rig.ops()) == 1


async def test_a_technicians_type_or_subtype_is_never_changed(rig, workspace_id):
    cw = rig.ticket("outlook crashes and the mailbox is full", type={"name": "Request"}, subType={"name": "Access"})
    only_type = rig.ticket("vpn drops every hour network down", type={"name": "Request"})
    await rig.sync()
    await rig.settings(auto_apply="on", fill_threshold="0.3", change_threshold="0.3")
    assert await rig.ai.auto_categorise(workspace_id) == 0
    assert await rig.ops() == [] and rig.patches(cw) == [] and rig.patches(only_type) == []


async def test_a_pair_the_board_does_not_allow_is_refused_before_anything_is_queued(rig, tech):
    cw = rig.ticket("outlook crashes")
    await rig.sync()
    local = await rig.local(cw)
    with pytest.raises(InvalidInput, match="not a subtype the board allows under Incident") as err:
        await rig.ai.category_writes.accept(tech, f"id:{local.id}", "Incident › Access")
    assert "Email" in (err.value.hint or "") and "Network" in (err.value.hint or "")
    assert await rig.ops() == [] and (await rig.local(cw)).type_name is None


async def test_the_ai_never_leaves_a_technicians_item_invalid(rig, workspace_id, tech):
    cw = rig.ticket("outlook crashes and the mailbox is full")
    await rig.sync()
    await rig.settings(auto_apply="on", fill_threshold="0.5")
    assert await rig.ai.auto_categorise(workspace_id) == 1
    await rig.deliver()
    rig.fake.edit_ticket(cw, item={"id": next(i["id"] for i in rig.fake.items.values() if i["name"] == "Outlook")})
    await rig.sync()  # a technician picked the item in ConnectWise
    local = await rig.local(cw)
    assert local.subcategory_name == "Outlook" and local.category_name == "Email"
    # Network does not take the Outlook item: neither a one-click change nor an undo (back to no type) is written
    with pytest.raises(InvalidInput, match="item Outlook does not go with"):
        await rig.ai.category_writes.accept(tech, f"id:{local.id}", "Incident › Network")
    with pytest.raises(InvalidInput, match="item Outlook"):
        await rig.ai.category_writes.undo(tech, f"id:{local.id}")
    assert len(await rig.ops()) == 1 and rig.fake.tickets[cw]["item"]["name"] == "Outlook"
    assert await rig.ai.auto_categorise(workspace_id) == 0  # nothing left to do, and nothing written


async def test_undo_goes_back_to_no_type_through_the_outbox(rig, workspace_id, tech):
    cw = rig.ticket("outlook crashes and the mailbox is full")
    await rig.sync()
    await rig.settings(auto_apply="on", fill_threshold="0.5")
    await rig.ai.auto_categorise(workspace_id)
    await rig.deliver()
    local = await rig.local(cw)
    assert await rig.ai.category_writes.undo(tech, f"id:{local.id}") == ""
    with pytest.raises(Conflict):
        await rig.ai.category_writes.undo(tech, f"id:{local.id}")
    await rig.deliver()
    assert "type" not in rig.fake.tickets[cw] and "subType" not in rig.fake.tickets[cw]
    assert rig.patches(cw)[-1] == [{"op": "remove", "path": "type"}, {"op": "remove", "path": "subType"}]
    local = await rig.local(cw)
    assert (local.type_name, local.category_name) == (None, None)
    assert await rig.ai.auto_categorise(workspace_id) == 0  # never again on this ticket
