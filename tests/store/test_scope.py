"""Workspace isolation is enforced by the session, not by filters a caller could forget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlmodel import select

from store.db import Database, Scope, ScopeError
from store.tables import Customer, Ticket


async def _seed(db: Database, ws: int, ident: str) -> None:
    async with db.write(Scope.workspace(ws)) as s:
        c = Customer(workspace_id=ws, identifier=ident, name=ident)
        s.add(c)
        await s.flush()
        s.add(Ticket(workspace_id=ws, number=1, subject=f"{ident} printer", priority="medium", stage="new",
                     customer_id=c.id))


async def test_unfiltered_select_sees_only_own_workspace(db: Database, workspace_id: int, other_workspace_id: int):
    await _seed(db, workspace_id, "ACME")
    await _seed(db, other_workspace_id, "GLOBEX")
    async with db.read(Scope.workspace(workspace_id)) as s:
        tickets = (await s.exec(select(Ticket))).all()
        customers = (await s.exec(select(Customer))).all()
        # Even a join and an aggregate are scoped.
        count = (await s.execute(select(sa.func.count()).select_from(Ticket))).scalar_one()
        joined = (await s.exec(select(Ticket, Customer).join(Customer, Customer.id == Ticket.customer_id))).all()
    assert [t.subject for t in tickets] == ["ACME printer"]
    assert [c.identifier for c in customers] == ["ACME"]
    assert count == 1
    assert [c.identifier for _, c in joined] == ["ACME"]
    async with db.read(Scope.system_wide()) as s:
        assert len((await s.exec(select(Ticket))).all()) == 2


async def test_get_by_primary_key_of_other_workspace_returns_none(db: Database, workspace_id: int,
                                                                  other_workspace_id: int):
    await _seed(db, other_workspace_id, "GLOBEX")
    async with db.read(Scope.system_wide()) as s:
        other_id = (await s.exec(select(Ticket.id))).one()
    async with db.read(Scope.workspace(workspace_id)) as s:
        assert await s.get(Ticket, other_id) is None


async def test_update_and_delete_are_scoped(db: Database, workspace_id: int, other_workspace_id: int):
    await _seed(db, workspace_id, "ACME")
    await _seed(db, other_workspace_id, "GLOBEX")
    async with db.write(Scope.workspace(workspace_id)) as s:
        await s.execute(sa.update(Ticket).values(subject="changed"))
        await s.execute(sa.delete(Customer).where(Customer.identifier == "GLOBEX"))
    async with db.read(Scope.system_wide()) as s:
        subjects = sorted((await s.exec(select(Ticket.subject))).all())
        idents = sorted((await s.exec(select(Customer.identifier))).all())
    assert subjects == ["GLOBEX printer", "changed"]
    assert idents == ["ACME", "GLOBEX"]


async def test_writing_a_row_of_another_workspace_is_refused(db: Database, workspace_id: int, other_workspace_id: int):
    with pytest.raises(ScopeError, match="belongs to workspace"):
        async with db.write(Scope.workspace(workspace_id)) as s:
            s.add(Customer(workspace_id=other_workspace_id, identifier="X", name="X"))
    async with db.read(Scope.system_wide()) as s:
        assert (await s.exec(select(Customer))).all() == []


async def test_session_without_scope_and_read_only_writes_are_refused(db: Database, workspace_id: int):
    with pytest.raises(TypeError):
        async with db.read(None):  # type: ignore[arg-type]
            pass
    with pytest.raises(ScopeError, match="read-only"):
        async with db.read(Scope.workspace(workspace_id)) as s:
            s.add(Customer(workspace_id=workspace_id, identifier="X", name="X"))
            await s.flush()


async def test_datetimes_round_trip_as_aware_utc(db: Database, workspace_id: int):
    berlin = timezone(timedelta(hours=2))
    when = datetime(2026, 6, 1, 12, 0, tzinfo=berlin)
    async with db.write(Scope.workspace(workspace_id)) as s:
        s.add(Ticket(workspace_id=workspace_id, number=5, subject="tz", priority="low", stage="new", created_at=when))
    async with db.read(Scope.workspace(workspace_id)) as s:
        t = (await s.exec(select(Ticket))).one()
    assert t.created_at == when
    assert t.created_at.tzinfo is not None and t.created_at.utcoffset() == timedelta(0)
    assert t.created_at.hour == 10
    with pytest.raises(Exception, match="naive"):
        async with db.write(Scope.workspace(workspace_id)) as s:
            s.add(Ticket(workspace_id=workspace_id, number=6, subject="naive", priority="low", stage="new",
                         created_at=datetime(2026, 1, 1)))  # noqa: DTZ001
    assert UTC is not None


async def test_statements_of_one_shape_are_scoped_for_each_workspace(db: Database, workspace_id: int,
                                                                      other_workspace_id: int):
    """The tables of a statement are remembered per shape (store/db.py _owned_classes): a statement built
    afresh with the same shape, other values and another workspace is still scoped to that workspace,
    subqueries included, and a statement of another shape is analysed on its own."""
    import store.db as store_db

    await _seed(db, workspace_id, "ACME")
    await _seed(db, other_workspace_id, "GLOBEX")

    def shaped(ident: str) -> sa.Select:  # a fresh object every call, the same shape
        owner = select(Customer.id).where(Customer.identifier == ident).scalar_subquery()
        return select(Ticket.subject).where(Ticket.customer_id == owner)

    def every() -> sa.Select:
        return select(Ticket.subject).where(Ticket.number == 1)

    store_db._CLASSES.clear()
    async with db.read(Scope.workspace(workspace_id)) as s:
        assert (await s.execute(shaped("ACME"))).scalars().all() == ["ACME printer"]
        assert (await s.execute(shaped("GLOBEX"))).scalars().all() == []  # the other's customer: not here
        assert (await s.execute(every())).scalars().all() == ["ACME printer"]
    memo = len(store_db._CLASSES)
    assert memo == 2  # two shapes, each analysed once
    assert sorted(c.__name__ for c in store_db._CLASSES[shaped("x")._generate_cache_key().key]) == \
        ["Customer", "Ticket"]  # the subquery's table was found
    async with db.read(Scope.workspace(other_workspace_id)) as s:
        assert (await s.execute(shaped("ACME"))).scalars().all() == []
        assert (await s.execute(shaped("GLOBEX"))).scalars().all() == ["GLOBEX printer"]
        assert (await s.execute(every())).scalars().all() == ["GLOBEX printer"]
    assert len(store_db._CLASSES) == memo  # served from the memo, scoped to this session's workspace
