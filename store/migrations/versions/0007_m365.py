"""M365 tenant per customer (issue 23: tenant context beside the ticket)

Revision ID: 0007_m365
Revises: 0001_initial
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import store.types

revision: str = "0007_m365"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_m365_tenant",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", name="uq_customer_m365_tenant_customer"),
    )
    with op.batch_alter_table("customer_m365_tenant", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_m365_tenant_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_customer_m365_tenant_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("customer_m365_tenant", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_m365_tenant_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_customer_m365_tenant_customer_id"))
    op.drop_table("customer_m365_tenant")
