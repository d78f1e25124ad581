"""View models of the outbox for operators (CLI, REST API, chat admin commands)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxOpView:
    id: int
    workspace_id: int
    connection_id: int | None  # None: a quick or alert action of a standalone ticket (never goes to a PSA)
    ticket_id: int | None
    ticket_number: int | None
    kind: str  # core.outbox.ops.OpKind
    status: str  # store.enums.OutboxStatus
    attempts: int
    max_attempts: int
    marker: str
    actor: str  # who triggered the write
    payload: dict[str, Any]  # redacted (no secrets, no file bytes)
    result: dict[str, Any]
    last_error: str | None
    last_status_code: int | None
    outcome_unknown: bool
    next_attempt_at: datetime
    lease_until: datetime | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    waiting_on: int | None = None  # an earlier unfinished write of the same ticket this one waits behind
    why: str | None = None  # in words: what is happening to it and what an operator can do

    @property
    def is_dead(self) -> bool:
        return self.status == "dead"


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxAuditView:
    id: int
    op_id: int | None
    attempt: int
    action: str
    outcome: str  # core.outbox.audit.Outcome
    response_status: int | None
    error: str | None
    duration_ms: int | None
    actor: str
    request: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxOpDetail:
    op: OutboxOpView
    audit: tuple[OutboxAuditView, ...] = ()


@dataclass(frozen=True, slots=True)
class OutboxPage:
    items: tuple[OutboxOpView, ...]
    next_cursor: str | None = None
