"""The normalized vocabulary every PSA is mapped onto (DESIGN.md §3)."""

from __future__ import annotations

from enum import StrEnum


class Priority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Sort rank: 0 is the most urgent."""
        return _PRIORITY_RANK[self]

    @property
    def label(self) -> str:
        return self.value.capitalize()


_PRIORITY_RANK = {Priority.CRITICAL: 0, Priority.HIGH: 1, Priority.MEDIUM: 2, Priority.LOW: 3}


class Stage(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"  # waiting on customer
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        return self not in (Stage.RESOLVED, Stage.CLOSED)

    @property
    def label(self) -> str:
        return _STAGE_LABEL[self]


_STAGE_LABEL = {
    Stage.NEW: "New",
    Stage.IN_PROGRESS: "In Progress",
    Stage.WAITING: "Waiting on Customer",
    Stage.RESOLVED: "Resolved",
    Stage.CLOSED: "Closed",
}

OPEN_STAGES: tuple[Stage, ...] = (Stage.NEW, Stage.IN_PROGRESS, Stage.WAITING)


class Origin(StrEnum):
    """Where a change came from; mirrored content carries it so it never echoes back."""

    PSA = "psa"
    SLACK = "slack"
    TEAMS = "teams"
    API = "api"
    CONSOLE = "console"
    EMAIL = "email"
    ALERT = "alert"
    SYSTEM = "system"


class EntryKind(StrEnum):
    NOTE_PUBLIC = "note_public"
    NOTE_INTERNAL = "note_internal"
    NOTE_RESOLUTION = "note_resolution"
    STATUS_CHANGE = "status_change"
    PRIORITY_CHANGE = "priority_change"
    ASSIGNMENT = "assignment"
    TIME_ENTRY = "time_entry"
    ATTACHMENT = "attachment"
    CATEGORY_CHANGE = "category_change"  # the ticket's type or category pair; internal (people's and the AI's)
    FIELD_CHANGE = "field_change"  # the PSA's own fields (UDF values); internal. Kinds are stored as plain strings


NOTE_KINDS = (EntryKind.NOTE_PUBLIC, EntryKind.NOTE_INTERNAL, EntryKind.NOTE_RESOLUTION)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    INFLIGHT = "inflight"
    DONE = "done"
    DEAD = "dead"
    BLOCKED = "blocked"  # held behind a dead op of the same ticket
    DISCARDED = "discarded"


class ChatPlatform(StrEnum):
    SLACK = "slack"
    TEAMS = "teams"


class BindingKind(StrEnum):
    CUSTOMER = "customer"
    DISPATCH = "dispatch"
    SLA_ALERTS = "sla_alerts"
