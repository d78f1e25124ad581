"""Alembic, driven from code: `upgrade(url)` brings a database to every head; `current_heads` reports."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from store.db import sync_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Apply every pending migration (all branches: feature issues add their own heads).

    Instances starting together take turns (a file lock for SQLite, an advisory lock on PostgreSQL);
    whoever comes second finds the schema current and does nothing.
    """
    with _migration_lock(url):
        if revision == "heads" and is_up_to_date(url):
            return
        command.upgrade(alembic_config(url), revision)


_LOCK_KEY = 0x6465736B  # "desk": the advisory-lock key of schema migrations


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    u = make_url(sync_url(url))
    if u.get_backend_name() == "sqlite":
        if not u.database or u.database == ":memory:":
            yield
            return
        path = Path(u.database).with_name(Path(u.database).name + ".migrate-lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    engine = create_engine(u, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
    finally:
        engine.dispose()


def script_heads(url: str) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(url)).get_heads())


def database_heads(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


def is_up_to_date(url: str) -> bool:
    return database_heads(url) == script_heads(url)
