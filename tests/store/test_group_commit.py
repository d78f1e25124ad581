"""Group commit (store/group_commit.py): writes queued while a group is open share its one transaction, each in its
own savepoint; a member that raises loses only its own rows; a member's write returns only after the group's COMMIT;
commit listeners run per member after it. Both databases."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest
import sqlalchemy as sa

from store.db import Database, Scope, mark_commit
from store.group_commit import grouped_writes
from store.tables import Customer


async def names(db: Database, ws: int) -> list[str]:
    async with db.read(Scope.workspace(ws)) as s:
        return sorted((await s.exec(sa.select(Customer.identifier))).scalars().all())  # type: ignore[call-overload]


def outside(coro: Any, ctx: contextvars.Context) -> asyncio.Task[Any]:
    """A task started from inside a member's block with the context from before it (a task that inherits the
    member's context is that member's own nested write, which never joins its group)."""
    return asyncio.get_running_loop().create_task(coro, context=ctx)


async def until_waiting(db: Database, n: int) -> None:
    for _ in range(1000):
        if db.groups.waiting() >= n:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{db.groups.waiting()} writes queued for the group, expected {n}")


async def test_writes_queued_behind_an_open_group_share_its_commit_and_a_refused_one_is_alone(
        db: Database, workspace_id: int):
    heard: list[str] = []
    for i in range(5):
        db.listen(f"c{i}", lambda i=i: heard.append(f"c{i}"))
    returned: list[str] = []

    async def writer(i: int) -> None:
        with grouped_writes():
            async with db.write(Scope.workspace(workspace_id)) as s:
                s.add(Customer(workspace_id=workspace_id, name=f"c{i}", identifier=f"c{i}"))
                mark_commit(s, f"c{i}")
                await s.flush()  # its row is written inside its savepoint before it refuses
                if i == 2:
                    raise ValueError("c2 refused")
        returned.append(f"c{i}")

    groups_before, ctx = db.groups.groups, contextvars.copy_context()
    with grouped_writes():
        async with db.write(Scope.workspace(workspace_id)) as s:  # the group's first member: the others queue
            s.add(Customer(workspace_id=workspace_id, name="first", identifier="first"))
            tasks = [outside(writer(i), ctx) for i in range(5)]
            await until_waiting(db, 5)
            assert returned == [] and heard == []
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(o).__name__ if o else None for o in outcomes] == [None, None, "ValueError", None, None]
    assert str(outcomes[2]) == "c2 refused"  # its own refusal
    assert await names(db, workspace_id) == ["c0", "c1", "c3", "c4", "first"]  # c2's row is gone, the others stay
    assert db.groups.groups == groups_before + 1  # one COMMIT for the six
    assert sorted(heard) == ["c0", "c1", "c3", "c4"]  # listeners per member, after the commit, none for c2


async def test_a_member_returns_only_after_the_group_commits(db: Database, workspace_id: int):
    seen_by_reader: list[list[str]] = []

    async def writer() -> None:
        with grouped_writes():
            async with db.write(Scope.workspace(workspace_id)) as s:
                s.add(Customer(workspace_id=workspace_id, name="late", identifier="late"))
        seen_by_reader.append(await names(db, workspace_id))  # another connection sees it once write() returned

    ctx = contextvars.copy_context()
    with grouped_writes():
        async with db.write(Scope.workspace(workspace_id)) as s:
            s.add(Customer(workspace_id=workspace_id, name="lead", identifier="lead"))
            task = outside(writer(), ctx)
            await until_waiting(db, 1)
        await asyncio.sleep(0)  # the lead's block ended; the queued member runs and only then does the group commit
    await task
    assert seen_by_reader == [["late", "lead"]]


@pytest.mark.filterwarnings("ignore:.*deassociated from connection")
async def test_a_failed_group_commit_fails_every_member(db: Database, workspace_id: int, database_backend: str):
    """A member that breaks the group's transaction itself (not just its savepoint) takes the group down: no member
    returns as if written. Forced here by closing the transaction from inside (what a lost connection does)."""
    async def writer(i: int) -> None:
        with grouped_writes():
            async with db.write(Scope.workspace(workspace_id)) as s:
                s.add(Customer(workspace_id=workspace_id, name=f"c{i}", identifier=f"c{i}"))

    ctx = contextvars.copy_context()
    with pytest.raises(Exception), grouped_writes():  # noqa: B017 - whatever the driver raises for it
        async with db.write(Scope.workspace(workspace_id)) as s:
            s.add(Customer(workspace_id=workspace_id, name="lead", identifier="lead"))
            tasks = [outside(writer(i), ctx) for i in range(3)]
            await until_waiting(db, 3)
            conn = await s.connection()
            await conn.get_transaction().rollback()  # type: ignore[union-attr]  # the savepoint's parent goes
            await conn.rollback()
            raise RuntimeError("the connection's transaction is gone")
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(o, BaseException) for o in outcomes), outcomes
    assert await names(db, workspace_id) == []


async def test_only_writes_asked_to_group_are_grouped(db: Database, workspace_id: int):
    """Outside grouped_writes a write is an ordinary transaction of its own, as before."""
    before = db.groups.groups
    async with db.write(Scope.workspace(workspace_id)) as s:
        s.add(Customer(workspace_id=workspace_id, name="plain", identifier="plain"))
    assert db.groups.groups == before  # not asked for: an ordinary transaction
    with grouped_writes():
        async with db.write(Scope.workspace(workspace_id)) as s:
            s.add(Customer(workspace_id=workspace_id, name="grouped", identifier="grouped"))
    assert db.groups.groups == before + 1
    assert await names(db, workspace_id) == ["grouped", "plain"]


async def test_a_queued_write_cancelled_while_it_waits_leaves_the_group_to_commit_and_the_turn_free(
        db: Database, workspace_id: int):
    async def writer() -> None:
        with grouped_writes():
            async with db.write(Scope.workspace(workspace_id)) as s:
                s.add(Customer(workspace_id=workspace_id, name="gone", identifier="gone"))

    ctx = contextvars.copy_context()
    with grouped_writes():
        async with db.write(Scope.workspace(workspace_id)) as s:
            s.add(Customer(workspace_id=workspace_id, name="lead", identifier="lead"))
            task = outside(writer(), ctx)
            await until_waiting(db, 1)
            task.cancel()
    assert (await asyncio.gather(task, return_exceptions=True))[0].__class__ is asyncio.CancelledError
    async with asyncio.timeout(5):  # the turn was given back (a leaked one would hold this write 10 s)
        async with db.write(Scope.workspace(workspace_id)) as s:
            s.add(Customer(workspace_id=workspace_id, name="after", identifier="after"))
    assert await names(db, workspace_id) == ["after", "lead"]
