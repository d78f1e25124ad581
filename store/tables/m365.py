"""Which Microsoft 365 (Entra ID) tenant a customer has: one row per customer (issue 23)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field

from store.tables.base import WorkspaceOwned, created_field, updated_field


class CustomerM365Tenant(WorkspaceOwned, table=True):
    """A customer's M365 tenant (GUID or verified domain) that our multi-tenant app reads with consent."""

    __tablename__ = "customer_m365_tenant"
    __table_args__ = (sa.UniqueConstraint("customer_id", name="uq_customer_m365_tenant_customer"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    tenant_id: str = Field(max_length=255)
    created_at: datetime = created_field()
    updated_at: datetime = updated_field()
