"""`store.sql.plain`: rows as named tuples for hot read paths (queue pages, SLA clock rows)."""

from __future__ import annotations

import sqlalchemy as sa

from store.db import Database, Scope
from store.sql import plain


async def _rows(db: Database, stmt: sa.Select) -> list[sa.Row]:
    async with db.read(Scope.system_wide()) as s:
        return list((await s.execute(stmt)).all())


async def test_plain_rows_keep_names_values_and_equality(db: Database):
    rows = await _rows(db, sa.select(sa.literal(7).label("id"), sa.literal("New").label("psa_status_name"),
                                     sa.literal(None).label("customer_name")).union_all(
        sa.select(sa.literal(8), sa.literal("Closed"), sa.literal("Acme"))))
    got = plain(rows)
    assert [(r.id, r.psa_status_name, r.customer_name) for r in got] == [(7, "New", None), (8, "Closed", "Acme")]
    assert got == rows and [tuple(r) for r in got] == [tuple(r) for r in rows]  # equal, as the memo compares them
    assert got[0]._fields == rows[0]._fields
    assert type(plain(rows)[0]) is type(got[0])  # one class per row shape, made once
    assert not isinstance(got[0], sa.Row)


async def test_no_rows_and_names_a_named_tuple_cannot_take(db: Database):
    assert plain([]) == []
    rows = await _rows(db, sa.select(sa.literal(1).label("_private"), sa.literal(2).label("ok")))
    got = plain(rows)
    assert got == rows and got[0]._private == 1 and got[0].ok == 2  # the rows themselves, still readable
