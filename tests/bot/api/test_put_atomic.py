"""PUT /tickets/{id} is all or nothing: every field is checked before anything changes, everything is written in
one transaction with one consistent set of outbox ops, and a replay never follows a partial write."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from store.db import Scope
from store.enums import OutboxStatus
from store.tables import OutboxOp, Ticket, TimelineEntry
from store.types import utcnow
from tests.bot.api.conftest import Api, assert_problem
from tests.factories import BOARD, psa_backed


async def _psa_ticket(api: Api, number: int = 501) -> tuple[int, Any]:
    """A PSA-backed ticket already delivered to the PSA (it has a number)."""
    setup = await psa_backed(api.container.db, api.ws)
    now = utcnow()
    async with api.container.db.write(Scope.workspace(api.ws)) as s:
        t = Ticket(workspace_id=api.ws, number=number, external_id=str(number), connection_id=setup.connection_id,
                   customer_id=setup.customer_id, subject="Server down", priority="medium", priority_rank=2,
                   stage="new", psa_status_id="10", psa_status_name="New", board_external_id=BOARD, source="psa",
                   created_at=now, updated_at=now)
        s.add(t)
    return number, setup


async def _state(api: Api, number: int) -> tuple[Ticket, list[OutboxOp], list[TimelineEntry]]:
    async with api.container.db.read(Scope.workspace(api.ws)) as s:
        t = (await s.exec(select(Ticket).where(Ticket.number == number))).one()
        ops = list((await s.exec(select(OutboxOp).where(OutboxOp.ticket_id == t.id))).all())
        entries = list((await s.exec(select(TimelineEntry).where(TimelineEntry.ticket_id == t.id))).all())
    return t, ops, entries


async def test_a_bad_status_changes_nothing_and_queues_nothing(api: Api):
    n, _ = await _psa_ticket(api)
    version = (await _state(api, n))[0].version
    key = {"Idempotency-Key": "put-atomic-1"}
    bad = await api.put(f"/tickets/{n}", {"priority": "critical", "status": "Bogus"}, headers=key)
    body = assert_problem(bad, 422)
    assert body["field"] == "status"
    t, ops, entries = await _state(api, n)
    assert (t.priority, t.version, ops, entries) == ("medium", version, [], [])  # the priority was not saved or queued
    again = await api.put(f"/tickets/{n}", {"priority": "critical", "status": "Bogus"}, headers=key)
    assert again.status_code == 422 and again.headers["idempotent-replayed"] == "true"
    assert (await _state(api, n))[1] == []  # the replayed 422 is true: the PSA was sent nothing


async def test_a_bad_assignee_after_a_good_priority_changes_nothing(api: Api):
    n, _ = await _psa_ticket(api)
    assert_problem(await api.put(f"/tickets/{n}", {"priority": "high", "assignee_id": 999_999}), 404)
    assert_problem(await api.put(f"/tickets/{n}", {"status": "In Progress", "priority": "bogus"}), 422)
    t, ops, _ = await _state(api, n)
    assert (t.priority, t.stage, ops) == ("medium", "new", [])


async def test_all_fields_are_applied_together_with_one_op_each(api: Api):
    n, setup = await _psa_ticket(api)
    version = (await _state(api, n))[0].version
    r = await api.put(f"/tickets/{n}", {"priority": "critical", "status": "In Progress",
                                        "assignee_id": setup.member_id})
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["priority"], got["stage"], got["status"], got["assignee_id"]) == (
        "critical", "in_progress", "In Progress", setup.member_id)
    t, ops, entries = await _state(api, n)
    payloads = {(o.payload.get("priority_external_id"), o.payload.get("status_external_id"),
                 o.payload.get("owner_external_id")) for o in ops}
    assert payloads == {("1", None, None), (None, "11", None), (None, None, "177")} and len(ops) == 3
    assert {o.status for o in ops} == {OutboxStatus.PENDING.value}
    assert {o.timeline_entry_id for o in ops} == {e.id for e in entries}  # each change is tracked to its op
    assert t.version == version + 3
    # Nothing to change is not an error and writes nothing more.
    same = await api.put(f"/tickets/{n}", {"priority": "critical", "status": "In Progress"})
    assert same.status_code == 200 and len((await _state(api, n))[1]) == 3
