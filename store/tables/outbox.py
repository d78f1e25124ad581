"""Outbox ops (every write to a PSA) and the audit log of every attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from store.tables.base import WorkspaceOwned, created_field
from store.types import JSONType, UTCDateTime, utcnow


class OutboxOp(WorkspaceOwned, table=True):
    __tablename__ = "outbox_op"
    __table_args__ = (
        sa.Index("ix_outbox_due", "status", "next_attempt_at", "id"),
        sa.Index("ix_outbox_ticket", "ticket_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # None: an op that never goes to a PSA (a quick or alert action of a standalone ticket; core/outbox/ops.py
    # SIDE_KINDS), possibly in a workspace without any PSA connection
    connection_id: int | None = Field(default=None, foreign_key="psa_connection.id", index=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    timeline_entry_id: int | None = Field(default=None, foreign_key="timeline_entry.id")
    kind: str = Field(max_length=32)  # core/outbox/ops.py
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    marker: str = Field(max_length=64, unique=True)  # travels with the PSA write
    status: str = Field(default="pending", max_length=16)
    attempts: int = Field(default=0)  # also the fencing token
    max_attempts: int = Field(default=8)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    last_status_code: int | None = None
    outcome_unknown: bool = Field(default=False)  # last attempt may have landed: reconcile first
    actor: str = Field(default="system", max_length=200)  # who triggered it, as the audit log names them
    author_member_id: int | None = None  # the technician who made the write (None: the system, an API key)
    result: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    # What an attempt changed on the way and must undo (connectors.base.WriteJournal), saved before the change
    journal: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    # When the owning attempt last started a PSA write (fenced, before the request): a reclaiming worker
    # waits until that write can no longer land (client timeout + settle) before looking for it.
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = created_field()
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuditLog(WorkspaceOwned, table=True):
    """Every request to a PSA and its response status; secrets and file bodies redacted."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_op", "op_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    op_id: int | None = Field(default=None, foreign_key="outbox_op.id")
    connection_id: int | None = Field(default=None, foreign_key="psa_connection.id")
    attempt: int = Field(default=0)
    action: str = Field(max_length=64)
    request: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    response_status: int | None = None
    outcome: str = Field(max_length=24)  # ok, reconciled, retry, dead, parked, discarded, redriven
    error: str | None = Field(default=None, sa_type=sa.Text)
    duration_ms: int | None = None
    actor: str = Field(default="system", max_length=200)
    created_at: datetime = created_field()
