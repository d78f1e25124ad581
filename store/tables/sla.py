"""SLA calendars, policies, per-ticket clock state, and the warnings already posted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from store.tables.base import WorkspaceOwned, created_field
from store.types import JSONType, UTCDateTime, utcnow


class SlaCalendar(WorkspaceOwned, table=True):
    """Business hours: an IANA zone, weekly windows and holidays (country/subdivision + custom dates)."""

    __tablename__ = "sla_calendar"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name", name="uq_sla_calendar_name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    timezone: str = Field(max_length=64)
    windows: str = Field(max_length=1000)  # "mon-fri 08:00-17:00; sat 09:00-12:00" (core/sla/calendars.py)
    holiday_country: str | None = Field(default=None, max_length=8)
    holiday_subdiv: str | None = Field(default=None, max_length=16)
    custom_holidays: list[str] = Field(default_factory=list, sa_type=JSONType)  # ISO dates
    version: int = Field(default=1)  # bumped on every edit (clock tables are cached per version)
    created_at: datetime = created_field()
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SlaPolicy(WorkspaceOwned, table=True):
    """Overrides of the default SLA policy: one row for the workspace, one per customer that differs."""

    __tablename__ = "sla_policy"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "scope_key", name="uq_sla_policy_scope"),)

    id: int | None = Field(default=None, primary_key=True)
    scope_key: str = Field(max_length=32)  # "workspace" or "customer:<id>"
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    # Partial settings merged over the defaults (core/sla/policies.py documents the keys).
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SlaClock(WorkspaceOwned, table=True):
    """The state of one metric's clock on one ticket (the current cycle)."""

    __tablename__ = "sla_clock"
    __table_args__ = (
        sa.UniqueConstraint("ticket_id", "metric", name="uq_sla_clock_metric"),
        sa.Index("ix_sla_clock_ticket_risk", "workspace_id", "ticket_risk_from"),  # core/sla/risk.py: one range count
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    metric: str = Field(max_length=16)  # first_response | resolution
    cycle: int = Field(default=1)  # a reopen with reopen=new_cycle starts the next cycle
    calendar_id: int | None = Field(default=None, foreign_key="sla_calendar.id")  # None = calendar time (24x7)
    priority: str = Field(max_length=16)  # the priority whose target is in force
    start_at: datetime = Field(sa_type=UTCDateTime)
    target_s: float
    paused_acc_s: float = Field(default=0.0)  # business seconds spent paused (past pauses)
    paused_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    stop_reason: str | None = Field(default=None, max_length=16)  # first_response | stage
    breached_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # stays once set (per cycle)
    paused_used_s: float | None = Field(default=None)  # business seconds used, while paused
    # From when this clock has at most core/sla/risk.py RISK_PCT of its target left (None: not while it stays as
    # it is). Written by every pass from the state it derived; the admin overview counts `risk_from <= now`.
    risk_from: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # On the resolution clock's row only: the earliest risk_from of the ticket's clocks (one row per ticket to count).
    ticket_risk_from: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_at: datetime = Field(sa_type=UTCDateTime)  # time of the last transition applied
    # What the clock has seen of the ticket: changes after these are replayed on the next pass.
    seen_entry_id: int = Field(default=0)
    seen_version: int = Field(default=0)
    seen_updated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    log: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType)  # transitions, for `explain`
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SlaWarning(WorkspaceOwned, table=True):
    """One row per (ticket, metric, cycle, threshold): whoever inserts it posts the warning, once."""

    __tablename__ = "sla_warning"
    __table_args__ = (
        sa.UniqueConstraint("ticket_id", "metric", "cycle", "threshold", name="uq_sla_warning"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id")
    metric: str = Field(max_length=16)
    cycle: int
    threshold: int  # percent of the target used; 100 = breached
    used_pct: float = Field(default=0.0)
    posted: bool = Field(default=False)  # False when a higher threshold was posted in the same pass
    created_at: datetime = created_field()
