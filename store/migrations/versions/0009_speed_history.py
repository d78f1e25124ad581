"""Tickets: when the notes, time entries and documents of a PSA ticket were last read (`history_at`), so a
first sync can list every ticket first and fetch histories after (open tickets) or on demand (closed)

Existing PSA tickets were synced with their children: they count as read at their last PSA change.

Revision ID: 0009_speed_history
Revises: 0001_initial
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "0009_speed_history"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("ticket", sa.Column("history_at", store.types.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE ticket SET history_at = COALESCE(psa_updated_at, updated_at) "
               "WHERE connection_id IS NOT NULL AND external_id IS NOT NULL")
    op.create_index("ix_ticket_history", "ticket", ["connection_id", "history_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ticket_history", table_name="ticket")
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_column("history_at")
