"""Alert intake: sources (per-source secret, encrypted), customer mapping rules, alerts and every receipt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from store.tables.base import WorkspaceOwned, created_field
from store.types import JSONType, UTCDateTime


class AlertSource(WorkspaceOwned, table=True):
    """One sender of alerts (an RMM instance, a Rewst/n8n flow), reached at /webhooks/alerts/{key}."""

    __tablename__ = "alert_source"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name", name="uq_alert_source_name"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)  # public: the URL path segment
    name: str = Field(max_length=100)
    kind: str = Field(max_length=16)  # events_v2, ninjaone, datto
    secret_ciphertext: bytes = Field(sa_type=sa.LargeBinary)
    # {"on_resolve": "note"|"resolve", "severity_map": {...}, "group_window_minutes": 15, "storm_threshold": 3}
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    enabled: bool = Field(default=True)
    # One processor per source at a time (any instance): a lease taken with a conditional UPDATE.
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = created_field()


class AlertMapping(WorkspaceOwned, table=True):
    """A rule: alerts whose device/site/org (by RMM id or by name) is `value` belong to `customer_id`."""

    __tablename__ = "alert_mapping"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "scope", "by", "value", name="uq_alert_mapping"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=8)  # device, site, org
    by: str = Field(max_length=8)  # id, name (names stored lower-case)
    value: str = Field(max_length=200)
    customer_id: int = Field(foreign_key="customer.id")
    created_at: datetime = created_field()


class Alert(WorkspaceOwned, table=True):
    """One alert of a source (its dedup key) and the ticket that carries it."""

    __table_args__ = (
        sa.UniqueConstraint("source_id", "dedup_key", name="uq_alert_dedup"),
        sa.Index("ix_alert_device", "source_id", "device_key"),
        sa.Index("ix_alert_customer", "workspace_id", "customer_id", "first_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="alert_source.id")
    dedup_key: str = Field(max_length=255)
    status: str = Field(default="new", max_length=16)  # new, triggered, acknowledged, resolved, triage
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    device_key: str | None = Field(default=None, max_length=200)
    device_name: str | None = Field(default=None, max_length=200)
    summary: str = Field(default="", max_length=1024)
    severity: str = Field(default="warning", max_length=16)
    triggers: int = Field(default=0)
    last_trigger_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # the sender's event time
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # the sender's event time
    first_at: datetime = created_field()


class AlertReceipt(WorkspaceOwned, table=True):
    """Every event received, once: the unique key makes a sender's retry a no-op; `applied_at` is set when
    its effect (ticket created, note added, triage) is done, so nothing received is lost."""

    __tablename__ = "alert_receipt"
    __table_args__ = (
        sa.UniqueConstraint("source_id", "dedup_key", "action", "occurrence", name="uq_alert_receipt"),
        sa.Index("ix_alert_receipt_pending", "source_id", "applied_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="alert_source.id")
    alert_id: int = Field(foreign_key="alert.id")
    dedup_key: str = Field(max_length=255)
    action: str = Field(max_length=16)
    occurrence: str = Field(max_length=64)
    occurred_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    event: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)  # the canonical event
    outcome: str | None = Field(default=None, max_length=16)  # created, noted, grouped, triage, stale, closed
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    received_at: datetime = created_field()
    applied_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class MailReceipt(WorkspaceOwned, table=True):
    """Every e-mail taken from a mailbox, once (unique Message-ID per workspace), with what became of it;
    the raw message is kept (size-capped) so a parse can be replayed."""

    __tablename__ = "mail_receipt"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "message_id", name="uq_mail_receipt"),
                      # mail triage: what waits, newest first, without walking every mail ever taken
                      sa.Index("ix_mail_receipt_outcome", "workspace_id", "outcome", "id"))

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=255)
    sender: str = Field(max_length=254)
    subject: str = Field(default="", max_length=255)
    outcome: str = Field(max_length=16)  # created, replied, ignored, triage
    reason: str | None = Field(default=None, max_length=200)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    raw: bytes = Field(default=b"", sa_type=sa.LargeBinary)
    received_at: datetime = created_field()


class EndUserRequest(WorkspaceOwned, table=True):
    """What an end user asked for in chat (a customer channel or a DM), once per chat message: the ticket it
    opened, the open ticket it was added to (over their hourly limit), or, with nowhere to go, kept here with
    their words (`held`) for a technician. Also what the per-person hourly limit counts."""

    __tablename__ = "end_user_request"
    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "message_key", name="uq_end_user_request"),
        sa.Index("ix_end_user_request_user", "workspace_id", "user_key", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_key: str = Field(max_length=200)  # platform:home team:user id (also for people who are not contacts)
    message_key: str = Field(max_length=200)
    outcome: str = Field(max_length=16)  # opened, added, held
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    text: str = Field(default="", sa_type=sa.Text)  # kept only when held (nowhere else has their words)
    created_at: datetime = created_field()
