"""Ticket numbers: the PSA id when it is free in the workspace, else none; a collision never wedges a sync."""

from __future__ import annotations

from sqlmodel import select

from core.sync.runs import RunStatus, get_cursor
from store.db import Database, Scope
from store.tables import Ticket
from tests.core.sync.conftest import SyncEnv, make_env
from tests.core.sync.test_engine import seed
from tests.fakes.connectwise import FakeConnectWise


async def _standalone(db: Database, workspace_id: int, number: int, *, marker: str | None = None) -> Ticket:
    async with db.write(Scope.workspace(workspace_id)) as s:
        t = Ticket(workspace_id=workspace_id, subject=f"Standalone #{number}", priority="medium", stage="new",
                   number=number, marker=marker, source="slack")
        s.add(t)
    return t


async def test_two_connections_with_overlapping_psa_ids_both_sync(db: Database, workspace_id: int):
    first = await make_env(db, workspace_id, FakeConnectWise(), name="cw-1")
    second = await make_env(db, workspace_id, FakeConnectWise(), name="cw-2")
    ids_a, ids_b = seed(first.fake, 4), seed(second.fake, 6)
    assert set(ids_a) <= set(ids_b)  # both PSAs number their tickets from the same start
    a = await first.sync.run(first.connection_id)
    b = await second.sync.run(second.connection_id)
    assert (a.status, b.status) == (RunStatus.OK, RunStatus.OK), (a.error, b.error)
    assert b.counts["created"] == 6 and b.counts["number_taken"] == 4
    tickets_a, tickets_b = await first.tickets(), await second.tickets()
    assert {int(e): t.number for e, t in tickets_a.items()} == {i: i for i in ids_a}
    assert {t.number for e, t in tickets_b.items() if int(e) in ids_a} == {None}  # reachable by id, not number
    assert all(t.number == int(e) for e, t in tickets_b.items() if int(e) not in ids_a)
    for env in (first, second):  # the next runs are clean too: no row is "bad" forever
        env.fake.clock.advance(600)
        env.fake.edit_ticket(ids_a[0], summary="edited")
        again = await env.sync.run(env.connection_id)
        assert again.status == RunStatus.OK and again.counts["updated"] == 1 and again.counts.get("bad") == 0
    assert (await second.tickets())[str(ids_a[0])].subject == "edited"


async def test_standalone_number_held_before_the_psa_was_connected(env: SyncEnv):
    ids = seed(env.fake, 3)
    held = await _standalone(env.db, env.workspace_id, ids[1])
    outcome = await env.sync.run(env.connection_id)
    assert outcome.status == RunStatus.OK and outcome.counts["created"] == 3, outcome.error
    tickets = await env.tickets()
    assert tickets[str(ids[1])].number is None and tickets[str(ids[0])].number == ids[0]
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        kept = await s.get(Ticket, held.id)
    assert kept is not None and (kept.number, kept.subject, kept.external_id) == (ids[1], f"Standalone #{ids[1]}", None)


async def test_linking_our_create_by_marker_never_takes_a_used_number(env: SyncEnv):
    """The marker link used to run outside a savepoint: its IntegrityError failed every run (cursor wedged)."""
    ids = seed(env.fake, 2)
    await _standalone(env.db, env.workspace_id, ids[1] + 1)  # the number the PSA will give our ticket
    async with env.db.write(Scope.workspace(env.workspace_id)) as s:
        ours = Ticket(workspace_id=env.workspace_id, subject="From Slack", priority="medium", stage="new",
                      marker="m-create-1", connection_id=env.connection_id, source="slack")
        s.add(ours)
    psa = env.fake.add_ticket("From Slack", externalXRef="m-create-1")
    assert psa["id"] == ids[1] + 1
    outcome = await env.sync.run(env.connection_id)
    assert outcome.status == RunStatus.OK, outcome.error
    got = (await env.tickets())[str(psa["id"])]
    assert got.id == ours.id and got.number is None
    assert await get_cursor(env.db, env.workspace_id, env.connection_id) == outcome.cursor_after
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        numbers = [t.number for t in (await s.exec(select(Ticket).where(Ticket.number == psa["id"]))).all()]
    assert numbers == [psa["id"]]
