"""Outbox ops without a PSA connection: Microsoft 365 quick actions and alert actions of standalone tickets, in a
workspace that has no PSA connection at all (`outbox_op.connection_id` nullable)

Revision ID: 0012_edges
Revises: 0001_initial
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_edges"
down_revision: str | Sequence[str] | None = "0001_initial"  # 0001_initial creates outbox_op
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_op", schema=None) as batch_op:
        batch_op.alter_column("connection_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    left = op.get_bind().execute(sa.text("SELECT count(*) FROM outbox_op WHERE connection_id IS NULL")).scalar()
    if left:
        raise RuntimeError(f"{left} outbox ops have no PSA connection (quick or alert actions of standalone "
                           "tickets): discard or delete them before downgrading past 0012_edges.")
    with op.batch_alter_table("outbox_op", schema=None) as batch_op:
        batch_op.alter_column("connection_id", existing_type=sa.Integer(), nullable=False)
