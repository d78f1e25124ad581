"""Frozen view models handed to surfaces. Block Kit, Adaptive Cards, console text and the REST API are
renderings of these; nothing here knows about a platform."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from store.enums import EntryKind, Priority, Stage


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketSummary:
    """One queue row."""

    id: int
    number: int | None  # None while a PSA create is still queued
    subject: str
    customer_id: int | None
    customer_name: str | None
    priority: Priority
    stage: Stage
    status_name: str  # the PSA's own status name, or the stage label when standalone
    assignee_id: int | None
    assignee_name: str | None
    created_at: datetime
    updated_at: datetime
    connection_id: int | None = None
    sla_remaining_s: float | None = None  # filled by the SLA engine when it lands (negative = exceeded)

    @property
    def display_number(self) -> str:
        return f"#{self.number}" if self.number is not None else "(pending)"


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineItem:
    id: int
    kind: EntryKind
    origin: str
    author_name: str | None
    body: str
    data: dict[str, Any]
    occurred_at: datetime
    external_id: str | None = None

    @property
    def is_internal(self) -> bool:
        """Internal notes and time entries never reach customer-facing views."""
        return self.kind in (EntryKind.NOTE_INTERNAL, EntryKind.TIME_ENTRY)


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketDetail:
    summary: TicketSummary
    description: str
    contact_name: str | None
    board_name: str | None
    type_name: str | None
    alert_ref: str | None
    device_ref: str | None
    contract_ref: str | None
    external_id: str | None
    timeline: tuple[TimelineItem, ...] = ()
    pending_writes: int = 0  # outbox ops not yet delivered
    dead_writes: int = 0  # outbox ops that gave up: shown loudly
    psa_url: str | None = None
    psa_respond_by: datetime | None = None
    psa_resolve_by: datetime | None = None
    first_response_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueuePage:
    items: tuple[TicketSummary, ...]
    next_cursor: str | None = None
    total: int | None = None  # only when asked (a count is not free on a big queue)
    filters: dict[str, Any] = field(default_factory=dict)
