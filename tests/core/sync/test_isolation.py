"""The sync engine never reads or rewrites another workspace's rows (Core statements filter workspace_id)."""

from __future__ import annotations

from sqlmodel import select

from core.workspaces import DirectoryService
from store.db import Scope
from store.tables import Member
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
