"""A burst of requests with one not yet checked API key checks it once (issue 20 item 5: 50 clients starting
at once queued 50 last-used writes for SQLite's one write turn, past busy_timeout under load)."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from core.apikeys import ApiKeyService, Unauthenticated
from store.db import Database


async def test_fifty_simultaneous_first_uses_of_a_key_check_it_once(db: Database, workspace_id: int):
    _, token = await ApiKeyService(db).create(workspace_id, name="burst", scopes=["read"])
    keys = ApiKeyService(db)  # a fresh instance: nothing cached, as after a restart
    statements: list[str] = []
    for engine in {db.engine, db._read_engine}:  # SQLite reads have their own engine
        sa.event.listen(engine.sync_engine, "before_cursor_execute", lambda _c, _cur, sql, *_a: statements.append(sql))
    principals = await asyncio.gather(*(keys.authenticate(token) for _ in range(50)))
    assert {p.workspace_id for p in principals} == {workspace_id}
    key_reads = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "api_key" in s]
    writes = [s for s in statements if s.lstrip().upper().startswith("UPDATE API_KEY")]
    assert len(key_reads) == 1
    assert len(writes) == 1
    # A wrong secret for the same key id is not answered by the run under way for the right one.
    wrong = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    results = await asyncio.gather(keys.authenticate(token), keys.authenticate(wrong), return_exceptions=True)
    assert results[0].workspace_id == workspace_id
    assert isinstance(results[1], Unauthenticated)


async def test_a_revoked_key_is_refused_after_the_burst(db: Database, workspace_id: int):
    info, token = await ApiKeyService(db).create(workspace_id, name="gone", scopes=["read"])
    keys = ApiKeyService(db)
    await asyncio.gather(*(keys.authenticate(token) for _ in range(5)))
    await keys.revoke(workspace_id, info.key_id)
    with pytest.raises(Unauthenticated):
        await keys.authenticate(token)
