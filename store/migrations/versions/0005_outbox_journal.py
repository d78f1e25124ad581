"""Outbox: a journal per op of what a write changed on the way and must undo (e.g. a ticket e-mail flag),
and when its owning attempt last started a PSA write (short, renewed leases)

Revision ID: 0005_outbox_journal
Revises: 0001_initial
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import store.types

revision: str = "0005_outbox_journal"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_op", schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            "journal", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False, server_default=sa.text("'{}'")))
        batch_op.add_column(sa.Column("sent_at", store.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_op", schema=None) as batch_op:
        batch_op.drop_column("sent_at")
        batch_op.drop_column("journal")
