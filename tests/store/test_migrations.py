"""The migrations build exactly the schema the table classes describe (no drift), on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import store.tables  # noqa: F401
from store import migrate
from store.db import sync_url


def test_schema_matches_models(db_url: str):
    engine = sa.create_engine(sync_url(db_url))
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": False})
            diff = compare_metadata(ctx, SQLModel.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_database_is_at_every_head(db_url: str):
    assert migrate.is_up_to_date(db_url)
    assert migrate.script_heads(db_url)


def test_instances_starting_together_migrate_once(db_url: str, tmp_path):
    """Several processes upgrading a fresh database at the same moment all succeed (they take turns)."""
    import subprocess
    import sys
    import uuid
    from pathlib import Path

    from sqlalchemy.engine import make_url

    root = Path(__file__).resolve().parents[2]
    fresh_db = None
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        fresh_db = f"deskbridge_m_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(make_url(sync_url(db_url)), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{fresh_db}"'))
        url = make_url(sync_url(db_url)).set(database=fresh_db).render_as_string(hide_password=False)
    try:
        code = "import sys; from store.migrate import upgrade; upgrade(sys.argv[1])"
        procs = [subprocess.Popen([sys.executable, "-c", code, url], cwd=root, stderr=subprocess.PIPE)
                 for _ in range(3)]
        errors = [p.communicate(timeout=120)[1].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], errors
        assert migrate.is_up_to_date(url)
    finally:
        if fresh_db:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{fresh_db}" WITH (FORCE)'))
            admin.dispose()
