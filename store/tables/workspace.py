"""Workspace (one MSP), its chat installations, channel bindings, customers, members and contacts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from store.tables.base import WorkspaceOwned, created_field
from store.types import JSONType, UTCDateTime


class Workspace(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    # Standalone ticket numbering: the next number handed out (taken with UPDATE … RETURNING).
    next_ticket_number: int = Field(default=1)
    # Workspace options, e.g. {"first_reply_moves_to_in_progress": true}.
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    created_at: datetime = created_field()


class ChatInstallation(WorkspaceOwned, table=True):
    """A Slack team or Teams tenant that installed Deskbridge; tokens encrypted at rest."""

    __tablename__ = "chat_installation"
    __table_args__ = (sa.UniqueConstraint("platform", "external_team_id", name="uq_chat_installation_team"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    external_team_id: str = Field(max_length=64)
    enterprise_id: str | None = Field(default=None, max_length=64)
    bot_user_id: str | None = Field(default=None, max_length=64)
    bot_token_ciphertext: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    installed_at: datetime = created_field()


class Customer(WorkspaceOwned, table=True):
    """A PSA company (or a standalone customer)."""

    __table_args__ = (sa.UniqueConstraint("connection_id", "external_id", name="uq_customer_external"),)

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int | None = Field(default=None, foreign_key="psa_connection.id", index=True)
    external_id: str | None = Field(default=None, max_length=64)
    identifier: str = Field(max_length=100, index=True)  # short name, e.g. "ACME"
    name: str = Field(max_length=200)
    active: bool = Field(default=True)
    created_at: datetime = created_field()


class Member(WorkspaceOwned, table=True):
    """A technician; mapped to chat users by e-mail (MemberChatIdentity)."""

    __table_args__ = (sa.UniqueConstraint("connection_id", "external_id", name="uq_member_external"),)

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int | None = Field(default=None, foreign_key="psa_connection.id", index=True)
    external_id: str | None = Field(default=None, max_length=64)
    identifier: str | None = Field(default=None, max_length=100)
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=254, index=True)
    is_admin: bool = Field(default=False)
    active: bool = Field(default=True)
    created_at: datetime = created_field()


class MemberChatIdentity(WorkspaceOwned, table=True):
    __tablename__ = "member_chat_identity"
    __table_args__ = (sa.UniqueConstraint("platform", "team_id", "user_id", name="uq_member_chat_identity"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    platform: str = Field(max_length=16)
    team_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)


class Contact(WorkspaceOwned, table=True):
    """An end user at a customer."""

    __table_args__ = (sa.UniqueConstraint("connection_id", "external_id", name="uq_contact_external"),)

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int | None = Field(default=None, foreign_key="psa_connection.id", index=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    external_id: str | None = Field(default=None, max_length=64)
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=254, index=True)
    phone: str | None = Field(default=None, max_length=64)


class ChannelBinding(WorkspaceOwned, table=True):
    """Gives a chat channel its meaning: customer, dispatch or SLA-alert channel."""

    __tablename__ = "channel_binding"
    __table_args__ = (
        sa.UniqueConstraint("platform", "team_id", "channel_id", "kind", name="uq_channel_binding"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    team_id: str = Field(max_length=64)
    channel_id: str = Field(max_length=128, index=True)
    kind: str = Field(max_length=16)
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    # "tech" (internal MSP channel) or "customer" (never shows internal notes or time).
    visibility: str = Field(default="tech", max_length=16)
    created_by: str | None = Field(default=None, max_length=128)
    created_at: datetime = created_field()
    updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
