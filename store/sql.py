"""Dialect-specific statements the ORM does not abstract (INSERT … ON CONFLICT for SQLite and PostgreSQL), and
the typed Core table of a SQLModel class for Core statements."""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
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
