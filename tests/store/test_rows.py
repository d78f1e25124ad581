"""`Database.rows`, the one-hop read: scoped exactly like a read session, on SQLite in one reader-thread call."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from store.db import Database, Scope, ScopeError, scoped_execute
from store.tables import Customer, Ticket


async def _seed(db: Database, ws: int, ident: str, tickets: int = 2) -> None:
    async with db.write(Scope.workspace(ws)) as s:
        c = Customer(workspace_id=ws, identifier=ident, name=ident)
        s.add(c)
        await s.flush()
        for n in range(1, tickets + 1):
            s.add(Ticket(workspace_id=ws, number=n, subject=f"{ident} printer {n}", priority="medium", stage="new",
                         customer_id=c.id))


async def test_rows_see_only_the_scope_workspace_in_joins_and_subqueries(db: Database, workspace_id: int,
                                                                         other_workspace_id: int):
    await _seed(db, workspace_id, "ACME")
    await _seed(db, other_workspace_id, "GLOBEX", tickets=3)
    mine = Scope.workspace(workspace_id)
    joined = (select(col(Ticket.subject), col(Customer.identifier))
              .outerjoin(Customer, col(Customer.id) == col(Ticket.customer_id)).order_by(col(Ticket.number)))
    assert [tuple(r) for r in await db.rows(mine, joined)] == [("ACME printer 1", "ACME"), ("ACME printer 2", "ACME")]
    # A subquery in the WHERE clause and one in the FROM clause are scoped too.
    inner = select(col(Customer.id)).where(col(Customer.identifier).in_(["ACME", "GLOBEX"]))
    by_sub = select(col(Ticket.subject)).where(col(Ticket.customer_id).in_(inner.scalar_subquery()))
    assert sorted(r.subject for r in await db.rows(mine, by_sub)) == ["ACME printer 1", "ACME printer 2"]
    counted = select(sa.func.count()).select_from(select(col(Ticket.id)).subquery())
    assert (await db.rows(mine, counted))[0][0] == 2
    # The same statement object for another workspace gets that workspace's rows (memoised per workspace).
    assert (await db.rows(Scope.workspace(other_workspace_id), counted))[0][0] == 3
    assert (await db.rows(Scope.system_wide(), counted))[0][0] == 5


async def test_rows_take_bind_parameters_and_give_the_session_types(db: Database, workspace_id: int):
    await _seed(db, workspace_id, "ACME")
    stmt = select(col(Ticket.number), col(Ticket.created_at)).where(col(Ticket.number) == sa.bindparam("n"))
    rows = await db.rows(Scope.workspace(workspace_id), stmt, {"n": 2})
    async with db.read(Scope.workspace(workspace_id)) as s:
        expected = (await s.execute(stmt, {"n": 2})).all()
    assert [tuple(r) for r in rows] == [tuple(r) for r in expected]
    assert rows[0].created_at.tzinfo is not None  # UTCDateTime's result processing, as in a session


async def test_rows_refuse_a_missing_scope(db: Database):
    with pytest.raises(TypeError, match="Scope"):
        await db.rows(None, select(col(Ticket.id)))  # type: ignore[arg-type]


async def test_rows_see_a_write_committed_just_before(db: Database, workspace_id: int):
    stmt = select(sa.func.count(col(Ticket.id)))
    assert (await db.rows(Scope.workspace(workspace_id), stmt))[0][0] == 0
    await _seed(db, workspace_id, "ACME")
    assert (await db.rows(Scope.workspace(workspace_id), stmt))[0][0] == 2


async def test_sqlite_rows_run_off_the_event_loop_in_one_call(db: Database, workspace_id: int, database_backend: str):
    """On SQLite the read runs in a reader thread (the loop is free meanwhile); many at once all answer."""
    if database_backend != "sqlite":
        pytest.skip("SQLite only: PostgreSQL reads are a plain async session")
    await _seed(db, workspace_id, "ACME")
    threads: set[str] = set()

    def thread_name() -> int:
        threads.add(threading.current_thread().name)
        return 1

    stmt = select(sa.func.count(col(Ticket.id)), sa.func.abs(sa.literal(1)))
    engine = db._sync_read_engine
    assert engine is not None
    sa.event.listen(engine, "before_cursor_execute", lambda *a, **k: thread_name())
    results = await asyncio.gather(*(db.rows(Scope.workspace(workspace_id), stmt) for _ in range(20)))
    assert all(r[0][0] == 2 for r in results)
    assert threads and all(name.startswith("deskbridge-read") for name in threads)
    await db.dispose()  # the reader threads and their connections end with the database
    assert db._readers is None


async def test_read_sync_runs_a_scoped_read_only_session(db: Database, workspace_id: int, other_workspace_id: int,
                                                         database_backend: str):
    await _seed(db, workspace_id, "ACME")
    await _seed(db, other_workspace_id, "GLOBEX", tickets=3)
    seen: list[str] = []

    def read(session) -> tuple[list[str], int]:
        seen.append(threading.current_thread().name)
        subjects = [t.subject for t in session.exec(select(Ticket).order_by(col(Ticket.number))).all()]
        return subjects, session.execute(select(sa.func.count()).select_from(Customer)).scalar_one()

    subjects, customers = await db.read_sync(Scope.workspace(workspace_id), read)
    assert (subjects, customers) == (["ACME printer 1", "ACME printer 2"], 1)
    if database_backend == "sqlite":  # one reader-thread call for both statements
        assert seen == [seen[0]] and seen[0].startswith("deskbridge-read")

    def write(session) -> None:
        session.add(Customer(workspace_id=workspace_id, identifier="X", name="X"))
        session.flush()

    with pytest.raises(ScopeError, match="read-only"):
        await db.read_sync(Scope.workspace(workspace_id), write)
    with pytest.raises(TypeError, match="Scope"):
        await db.read_sync(None, read)  # type: ignore[arg-type]


async def test_scoped_execute_reads_what_the_session_reads_scoped_to_its_workspace(
        db: Database, workspace_id: int, other_workspace_id: int):
    """`scoped_execute` (a column SELECT as Core on the session's connection): the workspace criteria of the
    session's scope on every table, joins and subqueries included; the same rows and types as `session.execute`."""
    await _seed(db, workspace_id, "ACME")
    await _seed(db, other_workspace_id, "GLOBEX", tickets=3)
    joined = (select(col(Ticket.number), col(Ticket.subject), col(Ticket.created_at), col(Customer.identifier))
              .outerjoin(Customer, col(Customer.id) == col(Ticket.customer_id))
              .where(col(Ticket.number) >= sa.bindparam("n")).order_by(col(Ticket.number)))
    inner = select(col(Customer.id)).where(col(Customer.identifier).in_(["ACME", "GLOBEX"]))
    counted = select(sa.func.count(col(Ticket.id))).where(col(Ticket.customer_id).in_(inner.scalar_subquery()))

    def read(session) -> tuple[list[Any], list[Any], int, int]:
        return (scoped_execute(session, joined, {"n": 1}).all(), session.execute(joined, {"n": 1}).all(),
                scoped_execute(session, counted).scalar_one(), session.execute(counted).scalar_one())

    for ws, expected in ((workspace_id, ("ACME", 2)), (other_workspace_id, ("GLOBEX", 3))):
        core, orm, n_core, n_orm = await db.read_sync(Scope.workspace(ws), read)
        assert [tuple(r) for r in core] == [tuple(r) for r in orm]
        assert {r.identifier for r in core} == {expected[0]} and len(core) == n_core == n_orm == expected[1]
        assert core[0].created_at.tzinfo is not None  # UTCDateTime's result processing, as in a session
    _, _, everyone, _ = await db.read_sync(Scope.system_wide(), read)
    assert everyone == 5

    def unscoped(session) -> Any:
        session.info.pop("scope")
        return scoped_execute(session, counted)

    with pytest.raises(ScopeError, match="no scope"):
        await db.read_sync(Scope.workspace(workspace_id), unscoped)
    with pytest.raises(TypeError, match="SELECT"):
        await db.read_sync(Scope.workspace(workspace_id),
                           lambda s: scoped_execute(s, sa.delete(Ticket)))  # type: ignore[arg-type]
