"""The sync engine never reads or rewrites another workspace's rows (Core statements filter workspace_id)."""

from __future__ import annotations

from sqlmodel import select

from core.sync.runs import RunStatus
from core.workspaces import DirectoryService
from store.db import Scope
from store.tables import Member, PsaConnection, Ticket
from tests.core.sync.conftest import SyncEnv


async def test_member_adoption_by_email_stays_in_the_connections_workspace(env: SyncEnv, other_workspace_id: int):
    directory = DirectoryService(env.db)
    theirs = await directory.add_member(other_workspace_id, name="Bob elsewhere", email="bob@msp.example")
    mine = await directory.add_member(env.workspace_id, name="Bob here", email="bob@msp.example")
    await env.sync.refresh_picklists(env.connection_id)
    async with env.db.read(Scope.workspace(other_workspace_id)) as s:
        other = await s.get(Member, theirs.id)
    assert other is not None and (other.connection_id, other.external_id) == (None, None)
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        adopted = await s.get(Member, mine.id)
        bobs = (await s.exec(select(Member).where(Member.email == "bob@msp.example"))).all()
    assert adopted is not None and adopted.connection_id == env.connection_id and adopted.external_id
    assert [m.id for m in bobs] == [mine.id]


async def _local_ticket(env: SyncEnv, workspace_id: int, *, marker: str, number: int | None = None,
                        connection_id: int | None = None) -> Ticket:
    """A ticket created locally (its PSA create not delivered yet): it carries only our marker."""
    async with env.db.write(Scope.workspace(workspace_id)) as s:
        t = Ticket(workspace_id=workspace_id, subject="Local create", priority="medium", stage="new", marker=marker,
                   number=number, connection_id=connection_id, source="slack")
        s.add(t)
    return t


async def test_marker_link_ignores_another_workspaces_ticket(env: SyncEnv, other_workspace_id: int):
    theirs = await _local_ticket(env, other_workspace_id, marker="m-shared-1", number=7)
    psa = env.fake.add_ticket("Created at the PSA", externalXRef="m-shared-1")
    outcome = await env.sync.run(env.connection_id)
    assert outcome.status == RunStatus.OK, outcome.error
    async with env.db.read(Scope.workspace(other_workspace_id)) as s:
        other = await s.get(Ticket, theirs.id)
    assert other is not None
    assert (other.connection_id, other.external_id, other.number, other.subject) == (None, None, 7, "Local create")
    mine = (await env.tickets())[str(psa["id"])]  # ours is imported as a new row of this workspace
    assert mine.workspace_id == env.workspace_id and mine.id != theirs.id and mine.subject == "Created at the PSA"


async def test_marker_link_ignores_a_ticket_of_another_connection(env: SyncEnv):
    other_conn = await _other_connection(env)
    theirs = await _local_ticket(env, env.workspace_id, marker="m-shared-2", connection_id=other_conn)
    psa = env.fake.add_ticket("Created at the PSA", externalXRef="m-shared-2")
    await env.sync.run(env.connection_id)
    async with env.db.read(Scope.workspace(env.workspace_id)) as s:
        other = await s.get(Ticket, theirs.id)
    assert other is not None and (other.connection_id, other.external_id) == (other_conn, None)
    assert (await env.tickets())[str(psa["id"])].id != theirs.id


async def test_marker_link_claims_our_own_unsent_create(env: SyncEnv):
    mine = await _local_ticket(env, env.workspace_id, marker="m-own-1", connection_id=env.connection_id)
    psa = env.fake.add_ticket("Created at the PSA", externalXRef="m-own-1")
    await env.sync.run(env.connection_id)
    got = (await env.tickets())[str(psa["id"])]
    assert got.id == mine.id and got.number == psa["id"]


async def _other_connection(env: SyncEnv) -> int:
    async with env.db.write(Scope.workspace(env.workspace_id)) as s:
        conn = PsaConnection(workspace_id=env.workspace_id, kind="sandbox", name="second")
        s.add(conn)
        await s.flush()
        return conn.id  # type: ignore[return-value]
