"""Teams: stored conversation references (chat_conversation), so proactive posts survive a restart

Revision ID: 0007_teams
Revises: 0001_initial
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import store.types

revision: str = "0007_teams"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_conversation",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("conversation_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("service_url", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("conversation_type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("team_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("channel_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("installed", sa.Boolean(), nullable=False),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "tenant_id", "conversation_id", name="uq_chat_conversation"),
    )
    op.create_index("ix_chat_conversation_workspace_id", "chat_conversation", ["workspace_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_chat_conversation_workspace_id", table_name="chat_conversation")
    op.drop_table("chat_conversation")
