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


class TicketM365Subject(WorkspaceOwned, table=True):
    """Which Microsoft 365 user (and optionally which Intune device) a ticket is about, when a technician chose
    it; without a row the ticket contact's e-mail is used."""

    __tablename__ = "ticket_m365_subject"
    __table_args__ = (sa.UniqueConstraint("ticket_id", name="uq_ticket_m365_subject_ticket"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    user_key: str = Field(max_length=254)  # UPN, e-mail or object id as the technician gave it
    device_id: str | None = Field(default=None, max_length=64)  # Intune managedDevice id
    chosen_by: str = Field(default="", max_length=200)  # actor display, for the audit trail
    updated_at: datetime = updated_field()


class M365ActionGrant(WorkspaceOwned, table=True):
    """A technician an admin allowed to run Microsoft 365 quick actions (reset password, revoke, sync)."""

    __tablename__ = "m365_action_grant"
    __table_args__ = (sa.UniqueConstraint("member_id", name="uq_m365_action_grant_member"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    granted_by: str = Field(default="", max_length=200)
    created_at: datetime = created_field()


class DocPlatform(WorkspaceOwned, table=True):
    """A documentation platform (Hudu, IT Glue) of a workspace: its base URL and API key (encrypted)."""

    __tablename__ = "doc_platform"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "kind", name="uq_doc_platform_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # hudu | itglue
    base_url: str = Field(max_length=500)
    credentials_ciphertext: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = created_field()
    updated_at: datetime = updated_field()
