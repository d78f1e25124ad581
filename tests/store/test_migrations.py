"""The migrations build exactly the schema the table classes describe (no drift), on both databases."""

from __future__ import annotations

import pytest
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


def test_0012_edges_lets_an_op_have_no_connection_and_keeps_the_ops_there_were(db_url: str, tmp_path):
    """On a database at every other head: an op must name a connection; after 0012_edges one may not (a quick or
    alert action of a standalone ticket), the ops there were are kept, and the column keeps its index and key."""
    import uuid
    from datetime import UTC, datetime

    from sqlalchemy.engine import make_url

    fresh_db = None
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'edges.db'}"
    else:
        fresh_db = f"deskbridge_e_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(make_url(sync_url(db_url)), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{fresh_db}"'))
        url = make_url(sync_url(db_url)).set(database=fresh_db).render_as_string(hide_password=False)
    now = datetime.now(UTC)
    tables = SQLModel.metadata.tables
    engine = sa.create_engine(sync_url(url))

    def op(marker: str, connection_id: int | None) -> sa.Insert:
        return sa.insert(tables["outbox_op"]).values(
            workspace_id=1, connection_id=connection_id, kind="tenant_action", payload={}, marker=marker,
            status="pending", attempts=0, max_attempts=6, next_attempt_at=now, outcome_unknown=False, actor="t",
            result={}, journal={}, created_at=now, updated_at=now)

    try:
        for head in sorted(migrate.script_heads(url) - {"0012_edges"}):
            migrate.upgrade(url, head)
        with engine.begin() as conn:
            conn.execute(sa.insert(tables["workspace"]).values(id=1, slug="w", name="W", timezone="UTC",
                                                                next_ticket_number=1, settings={}, created_at=now))
            conn.execute(sa.insert(tables["psa_connection"]).values(id=1, workspace_id=1, kind="sandbox", name="s",
                                                                     settings={}, enabled=True, is_default=True,
                                                                     created_at=now))
            conn.execute(op("before", 1))
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(op("refused", None))
        migrate.upgrade(url)  # the rest: 0012_edges
        assert migrate.is_up_to_date(url)
        with engine.begin() as conn:
            conn.execute(op("standalone", None))
            rows = conn.execute(sa.text("SELECT marker, connection_id FROM outbox_op ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("before", 1), ("standalone", None)]
        inspector = sa.inspect(engine)
        assert "ix_outbox_op_connection_id" in {i["name"] for i in inspector.get_indexes("outbox_op")}
        assert any(fk["referred_table"] == "psa_connection" and fk["constrained_columns"] == ["connection_id"]
                   for fk in inspector.get_foreign_keys("outbox_op"))
        assert next(c for c in inspector.get_columns("outbox_op") if c["name"] == "connection_id")["nullable"]
    finally:
        engine.dispose()
        if fresh_db:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{fresh_db}" WITH (FORCE)'))
