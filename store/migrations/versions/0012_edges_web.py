"""The base URL each running web app serves (`deskbridge admin link` prints it)

Revision ID: 0012_edges_web
Revises: 0001_initial
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import store.types

revision: str = "0012_edges_web"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_address",
        sa.Column("instance_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("base_url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("started_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("instance_id"),
    )


def downgrade() -> None:
    op.drop_table("web_address")
