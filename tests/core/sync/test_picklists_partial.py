"""One failing picklist never stops the others: what could be read is stored, what failed keeps its last
good value and is named with its reason in the run (issue: a 404 on one board's types used to abort all)."""

from __future__ import annotations

from sqlmodel import select

from store.db import Scope
from store.tables import Customer, Member, PicklistItem, SyncRun


async def _items(env, kind):
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        return list((await s.exec(select(PicklistItem).where(PicklistItem.kind == kind))).all())


async def test_a_boards_types_failing_keeps_everything_else_and_says_why(env):
    first = await env.sync.refresh_picklists(env.connection_id)
    assert first.status == "ok"
    boards = sorted(env.fake.boards)
    before = {(t.parent_external_id, t.external_id) for t in await _items(env, "type")}
    # The tenant now answers 404 for one board's types (a board removed halfway, a permission gap).
    env.fake.fail_next(404, times=1, match="GET /service/boards/{id}/types", after=1)  # the second board's
    outcome = await env.sync.refresh_picklists(env.connection_id)
    assert outcome.status == "partial" and (outcome.error or "").count("types of board") == 1
    statuses = await _items(env, "status")
    assert statuses and all(s.active for s in statuses)  # statuses of every board still refreshed
    types = await _items(env, "type")
    assert {(t.parent_external_id, t.external_id) for t in types if t.active} == before  # last good kept
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        members = (await s.exec(select(Member).where(Member.connection_id == env.connection_id))).all()
        customers = (await s.exec(select(Customer))).all()
        run = (await s.exec(select(SyncRun).where(SyncRun.id == outcome.run_id))).one()
    assert any(m.email for m in members) and customers  # linking by e-mail and customer ids still work
    assert run.status == "partial" and "last good values are kept" in (run.error or "")
    assert len(boards) >= 2


async def test_the_api_member_is_not_a_technician(env):
    await env.sync.refresh_picklists(env.connection_id)
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        rows = {m.external_id: m for m in (await s.exec(select(Member).where(
            Member.connection_id == env.connection_id))).all()}
    api = rows[str(env.fake.api_member_id)]
    assert api.active is False
    assert any(m.active for k, m in rows.items() if k != str(env.fake.api_member_id))


async def test_credentials_refused_fail_the_run(env):
    env.fake.revoke_auth()
    outcome = await env.sync.refresh_picklists(env.connection_id)
    assert outcome.status == "failed"


# ---------------------------------------------------------------- deleted tickets leave at once


async def test_a_full_sync_reconciles_deletions(env):
    from tests.core.sync.test_engine import seed

    ids = seed(env.fake, 4)
    await env.sync.run(env.connection_id)
    env.fake.delete_ticket(ids[0])
    env.fake.clock.advance(3600)  # the local rows are older than the reconcile's "recent" window
    outcome = await env.sync.run(env.connection_id, full=True)
    assert outcome.ok and outcome.counts.get("deleted") == 1
    gone = (await env.tickets())[str(ids[0])]
    assert gone.deleted_at is not None
