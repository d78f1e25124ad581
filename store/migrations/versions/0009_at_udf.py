"""Tickets keep the PSA's category pair (Autotask issue / sub-issue type) and custom fields (UDF values)

Revision ID: 0009_at_udf
Revises: 0001_initial
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_at_udf"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (("category_external_id", 64), ("category_name", 100), ("subcategory_external_id", 64),
            ("subcategory_name", 100))


def upgrade() -> None:
    # Plain ADD COLUMNs (no table copy on SQLite, none needed: every column is nullable or has a default).
    for name, length in _COLUMNS:
        op.add_column("ticket", sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=True))
    op.add_column("ticket", sa.Column("custom_fields", sa.JSON().with_variant(
        postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("custom_fields")
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
