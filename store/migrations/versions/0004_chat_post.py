"""Chat posts: every message the bot posted in a channel and what it holds (for redaction on sharing)

Revision ID: 0004_chat_post
Revises: 0001_initial
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import store.types

revision: str = "0004_chat_post"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_post",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("team_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("channel_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("message_ts", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("thread_ts", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("audience", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("redacted_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "channel_id", "message_ts", name="uq_chat_post_message"),
    )
    with op.batch_alter_table("chat_post", schema=None) as batch_op:
        batch_op.create_index("ix_chat_post_channel", ["workspace_id", "platform", "team_id", "channel_id"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_chat_post_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chat_post", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_post_workspace_id"))
        batch_op.drop_index("ix_chat_post_channel")
    op.drop_table("chat_post")
