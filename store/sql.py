"""Dialect-specific statements the ORM does not abstract (INSERT … ON CONFLICT for SQLite and PostgreSQL), and
the typed Core table of a SQLModel class for Core statements."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction
from sqlmodel import SQLModel


def table_of(model: type[SQLModel]) -> sa.Table:
    """`model.__table__`, typed (SQLModel does not declare it). Core statements on it are not scoped by the
    session: they filter `workspace_id` themselves."""
    table = sa.inspect(model).local_table
    assert isinstance(table, sa.Table), f"{model.__name__} is not a table model"
    return table


def rowcount(result: sa.Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched (its Result is a CursorResult, which the session's typing hides)."""
    return cast("sa.CursorResult[Any]", result).rowcount


def dialect_insert(dialect: str, table: Any) -> Any:
    """An INSERT supporting `on_conflict_do_nothing/do_update` for the given dialect name."""
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise ValueError(f"unsupported database dialect {dialect!r}")


_PLAIN: dict[tuple[str, ...], Any] = {}  # a named tuple class per row shape (statements are few: bounded by them)


def plain(rows: Iterable[Any]) -> list[Any]:
    """Rows as named tuples with the same fields, for hot read paths that read each row's columns by name many
    times: a Row looks the name up on every access (~1 µs with SQLAlchemy 2.1), a named tuple's attribute is a
    slot (~0.05 µs). Equal to the rows they came from (tuples of the same values). A shape whose names a named
    tuple cannot take (a leading underscore) is returned as the rows themselves."""
    rows = list(rows)
    if not rows:
        return rows
    fields = tuple(rows[0]._fields)
    if fields not in _PLAIN:
        try:
            _PLAIN[fields] = namedtuple("PlainRow", fields)  # fields known only at run time
        except ValueError:
            return rows
    make = _PLAIN[fields]._make
    return [make(r) for r in rows]


SQLITE_LOWER = "db_lower"  # registered on every SQLite connection (store/db.py): Python's str.lower


def unicode_lower_text(value: str | bytes | int | float | None) -> str | bytes | int | float | None:
    """SQLite's `db_lower`: lower case beyond ASCII (SQLite's own lower() folds A-Z only; PostgreSQL's folds all)."""
    return value.lower() if isinstance(value, str) else value


class unicode_lower(GenericFunction[str]):  # noqa: N801 - a SQL function's name
    """lower() that folds every letter on both databases: PostgreSQL's lower(), SQLite's `db_lower` (a Python
    function per row, so used only where a search holds letters beyond ASCII; A-Z alone fold the same either way)."""

    type = sa.String()
    name = "unicode_lower"
    inherit_cache = True


@compiles(unicode_lower)
def _lower_default(element: unicode_lower, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(unicode_lower, "sqlite")
def _lower_sqlite(element: unicode_lower, compiler: Any, **kw: Any) -> str:
    return f"{SQLITE_LOWER}({compiler.process(element.clauses, **kw)})"
