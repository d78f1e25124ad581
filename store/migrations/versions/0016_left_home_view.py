"""home_view: App Homes / personal views opened (and the page they show), shared by every app instance

Revision ID: 0016_left
Revises: 0001_initial
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import store.types

revision: str = "0016_left"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "home_view",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("team_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("opened_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("filters", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("cursor", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "team_id", "user_id", name="uq_home_view"),
    )
    op.create_index("ix_home_view_workspace_id", "home_view", ["workspace_id"], unique=False)
    op.create_index("ix_home_view_opened_at", "home_view", ["opened_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_home_view_opened_at", table_name="home_view")
    op.drop_index("ix_home_view_workspace_id", table_name="home_view")
    op.drop_table("home_view")
