"""SLA clocks: the instant each becomes "at risk" (sla_clock.risk_from) with an index, so the admin overview's
"SLA at risk" is one indexed range count (core/sla/risk.py). NULL until the monitor's next pass fills it.

Revision ID: 0012_admin_risk
Revises: 0002_sla (which creates sla_clock)
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.types import UTCDateTime

revision: str = "0012_admin_risk"
down_revision: str | Sequence[str] | None = "0002_sla"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sla_clock") as batch:
        batch.add_column(sa.Column("risk_from", UTCDateTime(timezone=True), nullable=True))
    op.create_index("ix_sla_clock_risk", "sla_clock", ["workspace_id", "risk_from", "ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_sla_clock_risk", table_name="sla_clock")
    with op.batch_alter_table("sla_clock") as batch:
        batch.drop_column("risk_from")
