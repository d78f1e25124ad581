"""SLA clocks: the ticket's earliest "at risk" instant on its resolution clock's row (sla_clock.ticket_risk_from),
indexed, so "SLA at risk" is a plain count of one index range (no DISTINCT over clocks; core/sla/risk.py). The
per-clock index of 0012_admin_risk is no longer used by any query and is dropped. NULL until the next pass.

Revision ID: 0012_admin_risk_ticket
Revises: 0012_admin_risk
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.types import UTCDateTime

revision: str = "0012_admin_risk_ticket"
down_revision: str | Sequence[str] | None = "0012_admin_risk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_sla_clock_risk", table_name="sla_clock")
    with op.batch_alter_table("sla_clock") as batch:
        batch.add_column(sa.Column("ticket_risk_from", UTCDateTime(timezone=True), nullable=True))
    op.create_index("ix_sla_clock_ticket_risk", "sla_clock", ["workspace_id", "ticket_risk_from"])


def downgrade() -> None:
    op.drop_index("ix_sla_clock_ticket_risk", table_name="sla_clock")
    with op.batch_alter_table("sla_clock") as batch:
        batch.drop_column("ticket_risk_from")
    op.create_index("ix_sla_clock_risk", "sla_clock", ["workspace_id", "risk_from", "ticket_id"])
