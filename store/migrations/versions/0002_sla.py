"""SLA engine: calendars, policies, per-ticket clocks and posted warnings

Revision ID: 0002_sla
Revises: 0001_initial
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import store.types

revision: str = "0002_sla"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def _str(n: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=n)


def _ts() -> store.types.UTCDateTime:
    return store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sla_calendar",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", _str(64), nullable=False),
        sa.Column("timezone", _str(64), nullable=False),
        sa.Column("windows", _str(1000), nullable=False),
        sa.Column("holiday_country", _str(8), nullable=True),
        sa.Column("holiday_subdiv", _str(16), nullable=True),
        sa.Column("custom_holidays", _json(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_sla_calendar_name"),
    )
    op.create_index("ix_sla_calendar_workspace_id", "sla_calendar", ["workspace_id"], unique=False)

    op.create_table(
        "sla_policy",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope_key", _str(32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("settings", _json(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "scope_key", name="uq_sla_policy_scope"),
    )
    op.create_index("ix_sla_policy_workspace_id", "sla_policy", ["workspace_id"], unique=False)

    op.create_table(
        "sla_clock",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("metric", _str(16), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=True),
        sa.Column("priority", _str(16), nullable=False),
        sa.Column("start_at", _ts(), nullable=False),
        sa.Column("target_s", sa.Float(), nullable=False),
        sa.Column("paused_acc_s", sa.Float(), nullable=False),
        sa.Column("paused_since", _ts(), nullable=True),
        sa.Column("stopped_at", _ts(), nullable=True),
        sa.Column("stop_reason", _str(16), nullable=True),
        sa.Column("breached_at", _ts(), nullable=True),
        sa.Column("last_at", _ts(), nullable=False),
        sa.Column("seen_entry_id", sa.Integer(), nullable=False),
        sa.Column("seen_version", sa.Integer(), nullable=False),
        sa.Column("seen_updated_at", _ts(), nullable=True),
        sa.Column("log", _json(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(["calendar_id"], ["sla_calendar.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id", "metric", name="uq_sla_clock_metric"),
    )
    op.create_index("ix_sla_clock_workspace_id", "sla_clock", ["workspace_id"], unique=False)

    op.create_table(
        "sla_warning",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("metric", _str(16), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("used_pct", sa.Float(), nullable=False),
        sa.Column("posted", sa.Boolean(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id", "metric", "cycle", "threshold", name="uq_sla_warning"),
    )
    op.create_index("ix_sla_warning_workspace_id", "sla_warning", ["workspace_id"], unique=False)


def downgrade() -> None:
    for table in ("sla_warning", "sla_clock", "sla_policy", "sla_calendar"):
        op.drop_index(f"ix_{table}_workspace_id", table_name=table)
        op.drop_table(table)
