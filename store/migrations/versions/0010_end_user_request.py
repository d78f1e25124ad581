"""End users' chat requests (issue 21): once per chat message, and what the hourly limit counts

Revision ID: 0010_end_user_request
Revises: 0001_initial
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import store.types

revision: str = "0010_end_user_request"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "end_user_request",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("message_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "message_key", name="uq_end_user_request"),
    )
    with op.batch_alter_table("end_user_request") as batch_op:
        batch_op.create_index("ix_end_user_request_workspace_id", ["workspace_id"], unique=False)
        batch_op.create_index("ix_end_user_request_user", ["workspace_id", "user_key", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("end_user_request") as batch_op:
        batch_op.drop_index("ix_end_user_request_user")
        batch_op.drop_index("ix_end_user_request_workspace_id")
    op.drop_table("end_user_request")
