"""Operator actions: listing and paging, detail with audit, redrive/discard rules, workspace isolation."""

from __future__ import annotations

import pytest
from sqlmodel import select

from core.context import Actor
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from core.outbox.admin import OutboxAdmin
from core.outbox.ops import AddNote, UploadAttachment, enqueue
from store.db import Scope
from store.enums import Origin
from store.tables import AttachmentBlob, OutboxOp
from tests.factories import psa_backed
from tests.fakes.outbox_psa import Fault


async def _ops(db, workspace_id: int, n: int, ticket_id: int | None = None) -> list[int]:
    setup = await psa_backed(db, workspace_id)
    async with db.write(Scope.workspace(workspace_id)) as s:
        ops = [enqueue(s, workspace_id=workspace_id, connection_id=setup.connection_id, ticket_id=ticket_id,
                       payload=AddNote(text=f"n{i}", visibility="internal"), actor="t") for i in range(n)]
        await s.flush()
        return [o.id for o in ops]  # type: ignore[misc]


async def test_list_pages_newest_first_and_is_scoped_to_the_workspace(db, workspace_id, other_workspace_id):
    mine = await _ops(db, workspace_id, 5)
    theirs = await _ops(db, other_workspace_id, 3)
    admin = OutboxAdmin(db)
    first = await admin.list_ops(workspace_id, limit=2)
    second = await admin.list_ops(workspace_id, limit=2, cursor=first.next_cursor)
    third = await admin.list_ops(workspace_id, limit=2, cursor=second.next_cursor)
    ids = [v.id for p in (first, second, third) for v in p.items]
    assert ids == sorted(mine, reverse=True) and third.next_cursor is None
    assert (await admin.counts(workspace_id))["pending"] == 5
    assert (await admin.counts(other_workspace_id))["pending"] == 3
    with pytest.raises(NotFound):
        await admin.get_op(workspace_id, theirs[0])
    with pytest.raises(NotFound):
        await admin.redrive(workspace_id, theirs[0], "cli")
    with pytest.raises(InvalidInput):
        await admin.list_ops(workspace_id, status="bogus")
    with pytest.raises(InvalidInput):
        await admin.list_ops(workspace_id, cursor="abc")


async def test_redrive_and_discard_rules(rig):
    await rig.synced_ticket("940")
    rig.psa.script("add_note", Fault.VALIDATION)
    await rig.tickets.comment(rig.tech, 940, "first", visibility="internal")
    await rig.tickets.comment(rig.tech, 940, "second", visibility="internal")
    await rig.run()
    dead, blocked = await rig.ops()
    admin = OutboxAdmin(rig.db, clock=rig.clock)
    ws = rig.tech.workspace_id
    with pytest.raises(PermissionDenied):
        await admin.redrive(ws, dead.id, rig.tech)  # a technician, not an admin
    with pytest.raises(Conflict):
        await admin.redrive(ws, blocked.id, "cli")  # only dead ops
    with pytest.raises(InvalidInput):
        await admin.discard(ws, dead.id, "cli", "  ")
    view = await admin.discard(ws, dead.id, Actor(workspace_id=ws, origin=Origin.API, display="apikey:ops",
                                                  is_admin=True), "customer withdrew the request")
    assert view.status == "discarded" and "apikey:ops" in view.last_error
    await rig.run()
    assert [o.status for o in await rig.ops()] == ["discarded", "done"]  # the follower went ahead
    assert [w.data["text"] for w in rig.psa.writes] == ["second"]
    with pytest.raises(Conflict):
        await admin.discard(ws, blocked.id, "cli", "too late")
    detail = await admin.get_op(ws, dead.id)
    assert [a.outcome for a in detail.audit] == ["dead", "discarded"]
    assert detail.audit[-1].actor == "apikey:ops" and detail.audit[-1].error == "customer withdrew the request"


async def test_discarding_an_attachment_prunes_its_bytes(rig):
    await rig.synced_ticket("941")
    rig.psa.script("upload_attachment", Fault.VALIDATION)
    await rig.tickets.attach(rig.tech, 941, filename="a.bin", content=b"\x01" * 100)
    await rig.run()
    [op] = await rig.ops()
    assert op.status == "dead" and UploadAttachment.model_validate(op.payload).size == 100
    await OutboxAdmin(rig.db).discard(rig.tech.workspace_id, op.id, "cli", "wrong file")
    async with rig.db.read(Scope.system_wide()) as s:
        assert (await s.exec(select(AttachmentBlob))).all() == []
        assert (await s.get(OutboxOp, op.id)).status == "discarded"  # type: ignore[union-attr]


async def test_every_waiting_or_dead_write_says_why_and_what_to_do(rig):
    from core.outbox.admin import OutboxAdmin

    await rig.synced_ticket("920")
    for i in range(3):
        await rig.tickets.comment(rig.tech, 920, f"n{i}", visibility="internal")
    admin = OutboxAdmin(rig.db, clock=rig.clock)
    first, second, third = (await admin.list_ops(rig.tech.workspace_id)).items[::-1]
    assert second.waiting_on == first.id and f"#{first.id}" in (second.why or "")
    assert third.waiting_on == second.id
    rig.psa.revoked = True  # the keys are revoked: the first write dies with a 401
    await rig.run()
    ops = {v.id: v for v in (await admin.list_ops(rig.tech.workspace_id)).items}
    dead, held = ops[first.id], ops[second.id]
    assert dead.status == "dead" and "deskbridge connection reauth sandbox-test" in (dead.why or "")
    assert held.status == "blocked" and held.waiting_on == first.id and "Retry or discard" in (held.why or "")
    detail = await admin.get_op(rig.tech.workspace_id, dead.id)
    assert detail.op.why == dead.why
