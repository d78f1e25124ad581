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
