"""Tickets, their timelines, and where they were posted in chat."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from store.tables.base import WorkspaceOwned, created_field
from store.types import JSONType, UTCDateTime, utcnow


class Ticket(WorkspaceOwned, table=True):
    """The local copy of a ticket: normalized view plus the PSA's own values."""

    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "number", name="uq_ticket_number"),
        sa.UniqueConstraint("connection_id", "external_id", name="uq_ticket_external"),
        # Queue indexes (core/queue.py): the open queue of a customer, of a technician, of the workspace
        # (in created order, so a first page reads 25 index entries), and a customer's queue by stage.
        sa.Index("ix_ticket_open_customer", "workspace_id", "customer_id", "is_open", "created_at", "id"),
        sa.Index("ix_ticket_open_assignee", "workspace_id", "assignee_member_id", "is_open", "created_at", "id"),
        sa.Index("ix_ticket_open", "workspace_id", "is_open", "created_at", "id"),
        # priority-sorted pages (a technician's queue, the open queue) read in index order (0011_speed)
        sa.Index("ix_ticket_open_assignee_priority", "workspace_id", "assignee_member_id", "is_open", "priority_rank",
                 "created_at", "id"),
        sa.Index("ix_ticket_open_priority", "workspace_id", "is_open", "priority_rank", "created_at", "id"),
        sa.Index("ix_ticket_customer_stage", "workspace_id", "customer_id", "stage", "created_at", "id"),
        sa.Index("ix_ticket_stage", "workspace_id", "stage", "created_at", "id"),
        sa.Index("ix_ticket_psa_updated", "connection_id", "psa_updated_at"),
        sa.Index("ix_ticket_history", "connection_id", "history_at"),  # histories still to fetch (core/sync/history.py)
    )

    id: int | None = Field(default=None, primary_key=True)
    number: int | None = None  # shown to people: the PSA id when PSA-backed, else the workspace's own numbering
    connection_id: int | None = Field(default=None, foreign_key="psa_connection.id")
    external_id: str | None = Field(default=None, max_length=64)
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    subject: str = Field(max_length=255)
    description: str = Field(default="", sa_type=sa.Text)
    priority: str = Field(max_length=16)
    priority_rank: int = Field(default=2)  # Priority.rank, for the priority sort
    stage: str = Field(max_length=16)
    # Derived by the database from `stage` (never written by code): keeps the open-queue indexes exact.
    is_open: bool | None = Field(
        default=None,
        sa_column=sa.Column(sa.Boolean, sa.Computed("stage IN ('new', 'in_progress', 'waiting')", persisted=True)),
    )
    # PSA's raw values (joined to the normalized ones by the connection's mappings).
    psa_status_id: str | None = Field(default=None, max_length=64)
    psa_status_name: str | None = Field(default=None, max_length=100)
    psa_priority_id: str | None = Field(default=None, max_length=64)
    psa_priority_name: str | None = Field(default=None, max_length=100)
    board_external_id: str | None = Field(default=None, max_length=64)
    board_name: str | None = Field(default=None, max_length=100)
    type_name: str | None = Field(default=None, max_length=100)
    # The PSA's two-level category (Autotask issue / sub-issue type), ids and names as the PSA sent them.
    # Halo's are its category paths ("Hardware>Laptop>…"), kept whole like the picklist's (PICKLIST_ID_MAX).
    category_external_id: str | None = Field(default=None, max_length=255)
    category_name: str | None = Field(default=None, max_length=200)
    subcategory_external_id: str | None = Field(default=None, max_length=255)
    subcategory_name: str | None = Field(default=None, max_length=200)
    # The PSA's own extra fields with a value (Autotask UDFs): name -> text. Internal: cards show the ones an
    # admin chose (connection setting `card_fields`), to technicians only.
    custom_fields: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    assignee_member_id: int | None = Field(default=None, foreign_key="member.id")
    source: str = Field(default="system", max_length=16)  # Origin of creation
    alert_ref: str | None = Field(default=None, max_length=200)  # linked RMM alert
    device_ref: str | None = Field(default=None, max_length=200)  # linked device/configuration
    contract_ref: str | None = Field(default=None, max_length=200)
    # The PSA's own SLA due dates, shown beside ours.
    psa_respond_by: datetime | None = Field(default=None, sa_type=UTCDateTime)
    psa_resolve_by: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_response_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = created_field()
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    psa_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    psa_hash: str | None = Field(default=None, max_length=64)  # content hash of the last synced PSA record
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # gone from the PSA
    # When this PSA ticket's notes, time entries and documents were last read; None: not read yet (a first
    # sync lists every ticket before any history; closed tickets' histories are read when someone opens one).
    history_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    marker: str | None = Field(default=None, max_length=64, index=True)  # dedupe marker of our create
    version: int = Field(default=1)


class TimelineEntry(WorkspaceOwned, table=True):
    """Notes, status changes, assignments, time entries, attachments: each with its origin."""

    __tablename__ = "timeline_entry"
    __table_args__ = (
        sa.UniqueConstraint("ticket_id", "kind", "external_id", name="uq_timeline_external"),
        sa.Index("ix_timeline_ticket", "ticket_id", "occurred_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    kind: str = Field(max_length=24)  # EntryKind
    origin: str = Field(max_length=16)  # Origin
    external_id: str | None = Field(default=None, max_length=64)
    marker: str | None = Field(default=None, max_length=64, index=True)  # outbox marker that wrote it
    author_member_id: int | None = Field(default=None, foreign_key="member.id")
    author_name: str | None = Field(default=None, max_length=200)
    author_is_contact: bool = Field(default=False)
    body: str = Field(default="", sa_type=sa.Text)
    # Kind-specific: {"from": …, "to": …} for changes, {"minutes": …} for time, {"filename": …} for files.
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    recorded_at: datetime = created_field()


class ChatLink(WorkspaceOwned, table=True):
    """Where a ticket was posted: Slack channel + ts, or a Teams conversation reference + activity id."""

    __tablename__ = "chat_link"
    __table_args__ = (
        sa.UniqueConstraint("platform", "channel_id", "message_ts", name="uq_chat_link_message"),
        sa.Index("ix_chat_link_ticket", "ticket_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    platform: str = Field(max_length=16)
    team_id: str = Field(max_length=64)
    channel_id: str = Field(max_length=128)
    message_ts: str = Field(max_length=128)  # Slack ts or Teams activity id of the card
    conversation_ref: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    created_at: datetime = created_field()


class ChatPost(WorkspaceOwned, table=True):
    """A message the bot posted in a chat channel, and what it holds (whose ticket, for whom).

    Kept so that when a channel becomes readable by a customer (bound `shared`, shared over Slack Connect
    or as a Teams shared channel), the bot's earlier posts there that hold internal content or another
    customer's tickets can be found and redacted: those platforms show new members the history.
    """

    __tablename__ = "chat_post"
    __table_args__ = (
        sa.UniqueConstraint("platform", "channel_id", "message_ts", name="uq_chat_post_message"),
        sa.Index("ix_chat_post_channel", "workspace_id", "platform", "team_id", "channel_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    team_id: str = Field(max_length=64)
    channel_id: str = Field(max_length=128)
    message_ts: str = Field(max_length=128)
    thread_ts: str | None = Field(default=None, max_length=128)
    ticket_id: int | None = None  # no foreign key: the record outlives a ticket purged from the PSA
    customer_id: int | None = None
    kind: str = Field(max_length=16)  # card, note, dead, sla, notice
    audience: str = Field(max_length=16)  # tech (internal content) or customer
    created_at: datetime = created_field()
    redacted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AttachmentBlob(WorkspaceOwned, table=True):
    """File bytes waiting to be uploaded to the PSA (kept until the outbox delivers, then pruned)."""

    __tablename__ = "attachment_blob"

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64)
    size: int
    content_type: str = Field(default="application/octet-stream", max_length=200)
    data: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = created_field()
