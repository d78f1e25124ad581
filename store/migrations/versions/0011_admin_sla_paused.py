"""SLA clocks: what a paused clock has used (sla_clock.paused_used_s), so "SLA at risk" is a cheap query

Revision ID: 0011_admin_sla_paused
Revises: 0002_sla (which creates sla_clock)
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_admin_sla_paused"
down_revision: str | Sequence[str] | None = "0002_sla"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sla_clock") as batch:
        batch.add_column(sa.Column("paused_used_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sla_clock") as batch:
        batch.drop_column("paused_used_s")
