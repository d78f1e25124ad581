"""Outbox: the technician who made each write (typed), so a failed write's author is found without parsing
the audit actor string

Revision ID: 0007_outbox_author
Revises: 0001_initial
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_outbox_author"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_op", schema=None) as batch_op:
        batch_op.add_column(sa.Column("author_member_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_op", schema=None) as batch_op:
        batch_op.drop_column("author_member_id")
