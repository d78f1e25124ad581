"""Database.write on SQLite: writers of one process take turns in order; commit listeners run after commits only."""

from __future__ import annotations

import asyncio

import pytest

from store.db import Database, Scope, mark_commit
from store.tables import Customer


async def test_concurrent_writers_take_turns_and_all_commit(db: Database, workspace_id: int, database_backend: str):
    """SQLite has one writer at a time: writers of a process queue in order instead of fighting over its lock.
    PostgreSQL writers run concurrently (row locks), so there only the commits are checked."""
    inside: list[int] = []
    overlaps: list[int] = []

    async def writer(i: int) -> None:
        async with db.write(Scope.workspace(workspace_id)) as s:
            if inside:
                overlaps.append(i)
            inside.append(i)
            s.add(Customer(workspace_id=workspace_id, name=f"c{i}", identifier=f"c{i}"))
            await asyncio.sleep(0.01)  # hold the transaction across an await
            inside.remove(i)

    await asyncio.gather(*(writer(i) for i in range(12)))
    if database_backend == "sqlite":
        assert overlaps == []
    async with db.read(Scope.workspace(workspace_id)) as s:
        from sqlmodel import select

        assert len((await s.exec(select(Customer))).all()) == 12


async def test_commit_listeners_run_after_a_commit_and_not_after_a_rollback(db: Database, workspace_id: int):
    heard: list[str] = []
    db.listen("thing", lambda: heard.append("thing"))
    async with db.write(Scope.workspace(workspace_id)) as s:
        mark_commit(s, "thing")
        assert heard == []  # not before the commit
    assert heard == ["thing"]
    with pytest.raises(RuntimeError):
        async with db.write(Scope.workspace(workspace_id)) as s:
            mark_commit(s, "thing")
            raise RuntimeError("rolled back")
    assert heard == ["thing"]
    async with db.write(Scope.workspace(workspace_id)):
        pass  # a write that marked nothing
    assert heard == ["thing"]
