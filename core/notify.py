"""The port through which core/ reaches chat surfaces (DESIGN.md §1): `Notifier`.

Services emit domain events; bot/slack and bot/teams implement Notifier and decide where each event
goes (the ticket's thread, a bound channel, the technician's App Home). core/ never imports a surface.
Every event carries the origin of the change, so a surface never mirrors a change back to where it
came from (no echo loops).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    workspace_id: int
    ticket_id: int | None
    ticket_number: int | None
    origin: str  # store.enums.Origin value of the change
    occurred_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketCreated(DomainEvent):
    subject: str
    customer_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketChanged(DomainEvent):
    """Fields changed (e.g. {"stage": ("new", "in_progress"), "assignee_member_id": (None, 7)})."""

    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteAdded(DomainEvent):
    entry_id: int
    visibility: str  # public, internal, resolution
    author_name: str | None
    body: str
    # Where a note written in chat came from ("slack:C123:1700000000.000100"): every other thread of the
    # ticket shows it, that one does not (no echo). None for notes from the PSA (sync).
    source: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteDelivered(DomainEvent):
    """An outbox op reached the PSA (cards showing "queued" can update)."""

    op_id: int
    kind: str
    external_id: str | None = None
    entry_id: int | None = None  # the timeline entry the write carried (a note, an assignment), if any


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteDead(DomainEvent):
    """An outbox op gave up; the ticket's thread must say so, with what an operator can do."""

    op_id: int
    kind: str
    error: str
    entry_id: int | None = None  # as WriteDelivered.entry_id
    cause: str = "refused"  # credentials | permission | deleted | refused | gave_up (what an admin can do differs)
    connection: str | None = None  # the connection's name (for `deskbridge connection reauth <name>`)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertNeedsTicket(DomainEvent):
    """An RMM alert that made no ticket (no customer found for it: it waits in triage). Surfaces post it, with a
    "Create ticket" button, to the technicians' channels core names (core/chat/alert_offers.py)."""

    alert_id: int
    source_name: str
    summary: str
    severity: str
    device: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaWarningEvent(DomainEvent):
    metric: str  # first_response | resolution
    threshold: int  # percent of the target used (e.g. 75, 90, 100 = breached)
    remaining_s: float
    used_pct: float | None = None  # the share actually used when posted (>= threshold; 100 once breached)
    due_at: datetime | None
    customer_id: int | None = None
    subject: str = ""
    priority: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskAlertEvent(DomainEvent):
    """An open ticket's escalation risk rose over the workspace's threshold (core/ai/risk.py): once per rise, for
    the SLA/dispatch channels that technicians only read (never a channel shared with a customer)."""

    score: float
    threshold: float
    reasons: tuple[str, ...] = ()
    customer_id: int | None = None
    subject: str = ""
    priority: str = ""


@runtime_checkable
class Notifier(Protocol):
    async def notify(self, event: DomainEvent) -> None:
        """Deliver one event; implementations must not raise for delivery failures (log them)."""
        ...


def room(notifier: object) -> int:
    """How many more events `notifier` can queue without dropping one (its `room()` when it has one; a notifier
    without a bounded queue has room for any number). Read by whoever must not lose an event to a full queue (the
    journal relay keeps an event's row until there is room)."""
    method = getattr(notifier, "room", None)
    return int(method()) if callable(method) else 1 << 30


class NullNotifier:
    async def notify(self, event: DomainEvent) -> None:
        return None


class FanoutNotifier:
    """Sends each event to every notifier; one failing surface never blocks the others."""

    def __init__(self, notifiers: Sequence[Notifier] = ()) -> None:
        self.notifiers = list(notifiers)

    def add(self, notifier: Notifier) -> None:
        self.notifiers.append(notifier)

    def room(self) -> int:
        """The least room of its notifiers: an event goes to every one of them."""
        return min((room(n) for n in self.notifiers), default=1 << 30)

    async def notify(self, event: DomainEvent) -> None:
        for n in self.notifiers:
            try:
                await n.notify(event)
            except Exception:  # noqa: BLE001 - a surface's failure is logged, never propagated
                log.exception("notifier failed", extra={"notifier": type(n).__name__, "event": type(event).__name__})


class RecordingNotifier:
    """Keeps every event (tests, the console)."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    async def notify(self, event: DomainEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[DomainEvent]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]
