"""AI assist: the AI's own category changes (undoable) and escalation-risk scores of open tickets (core/ai)

Revision ID: 0009_ai_assist
Revises: 0001_initial
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import store.types

revision: str = "0009_ai_assist"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ai_category_apply",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("previous", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("applied_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("undone_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("undone_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id", name="uq_ai_category_apply_ticket"),
    )
    with op.batch_alter_table("ai_category_apply", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ai_category_apply_workspace_id"), ["workspace_id"], unique=False)
    op.create_table(
        "ai_risk",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reasons", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                  nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("ticket_version", sa.Integer(), nullable=False),
        sa.Column("scored_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id", name="uq_ai_risk_ticket"),
    )
    with op.batch_alter_table("ai_risk", schema=None) as batch_op:
        batch_op.create_index("ix_ai_risk_score", ["workspace_id", "score"], unique=False)
        batch_op.create_index(batch_op.f("ix_ai_risk_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ai_risk", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_risk_workspace_id"))
        batch_op.drop_index("ix_ai_risk_score")
    op.drop_table("ai_risk")
    with op.batch_alter_table("ai_category_apply", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_category_apply_workspace_id"))
    op.drop_table("ai_category_apply")
